"""The emulated PI Data Archives: data servers, digital state sets and PI points, deterministic from the seed.

Point metadata is vectorised (numpy over point indices) and Point objects are built lazily and cached, so a
100,000-tag catalog starts in well under a second; WebIDs are decoded on lookup instead of indexed up front.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mock_pi import webid
from mock_pi.pitime import parse_time

MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

# All points were created at the same instant; the archive holds nothing before it.
CREATED_US = parse_time("2020-01-01T00:00:00Z", 0)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on uint64 arrays (wrapping arithmetic is intended)."""
    z = x.astype(np.uint64, copy=True)
    z += _GOLDEN
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def mix64(x: int) -> int:
    """Scalar splitmix64, identical to the vectorised one."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def unit_float(h: np.ndarray) -> np.ndarray:
    """uint64 hashes → floats uniform in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


# --- digital state sets ----------------------------------------------------------------------------------------

SYSTEM_STATES: dict[int, str] = {
    210: "Access Denied", 211: "No Sample", 212: "No Result", 213: "Unit Down", 214: "Sample Bad",
    215: "Equip Fail", 216: "No Lab Data", 233: "DCS failed", 237: "Bad Output", 238: "Scan Off",
    241: "Failed", 242: "Error", 244: "Filtered", 245: "Calc Off", 246: "I/O Timeout", 247: "Set to Bad",
    248: "No Data", 249: "Calc Failed", 250: "Calc Overflow", 251: "Under Range", 252: "Over Range",
    253: "Pt Created", 254: "Shutdown", 255: "Bad Input", 256: "Bad Total", 257: "No Alarm",
}  # fmt: skip
PT_CREATED, NO_DATA, CALC_FAILED = 253, 248, 249


@dataclass(frozen=True)
class DigitalSet:
    name: str
    description: str
    states: tuple[tuple[str, int], ...]  # (state text, code)
    is_system: bool = False

    @cached_property
    def names_by_code(self) -> dict[int, str]:
        return dict((code, name) for name, code in self.states)


DIGITAL_SETS: tuple[DigitalSet, ...] = (
    DigitalSet("Modes", "Controller modes", (("Manual", 0), ("Auto", 1), ("Cascade", 2))),
    DigitalSet("OnOff", "Two-state on/off", (("Off", 0), ("On", 1))),
    DigitalSet("OpenClosed", "Valve position", (("Closed", 0), ("Open", 1), ("Travel", 2))),
    DigitalSet(
        "Alarm", "Alarm states", (("Normal", 0), ("Low", 1), ("High", 2), ("LowLow", 3), ("HighHigh", 4))
    ),
    DigitalSet(
        "BatchPhase",
        "Batch phases",
        (("Idle", 0), ("Filling", 1), ("Heating", 2), ("Reacting", 3), ("Draining", 4), ("Cleaning", 5)),
    ),
    DigitalSet("SYSTEM", "System digital states", tuple((n, c) for c, n in SYSTEM_STATES.items()), True),
)
_SETS_BY_NAME = {s.name.upper(): s for s in DIGITAL_SETS}

# --- point families ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    code: str
    label: str
    point_type: str
    units: str
    zero: float
    span: float
    suffix: str
    digital_set: str = ""
    min_spacing_s: int = 5
    max_spacing_s: int = 4 * 3600


FAMILIES: tuple[Family, ...] = (
    Family("FIC", "Flow controller", "Float32", "m3/h", 0.0, 500.0, "PV"),
    Family("TI", "Temperature", "Float32", "°C", -20.0, 220.0, "PV"),
    Family("PI", "Pressure", "Float32", "bar", 0.0, 25.0, "PV"),
    Family("LI", "Tank level", "Float32", "%", 0.0, 100.0, "PV"),
    Family("AI", "Analyzer", "Float64", "ppm", 0.0, 1000.0, "PV"),
    Family("JI", "Power", "Float64", "kW", 0.0, 5000.0, "PV"),
    Family("SI", "Speed", "Float32", "rpm", 0.0, 3600.0, "PV"),
    Family("CNT", "Production counter", "Int32", "count", 0.0, 100000.0, "CNT", min_spacing_s=60),
    Family("ALM", "Active alarm count", "Int16", "", 0.0, 50.0, "CNT", min_spacing_s=60),
    Family("HS", "Pump run status", "Digital", "", 0.0, 1.0, "ST", "OnOff", 600, 86400),
    Family("XV", "Valve position", "Digital", "", 0.0, 2.0, "ST", "OpenClosed", 600, 86400),
    Family("MODE", "Controller mode", "Digital", "", 0.0, 2.0, "MODE", "Modes", 600, 86400),
    Family("ALS", "Alarm state", "Digital", "", 0.0, 4.0, "ALM", "Alarm", 600, 86400),
    Family("BATCH", "Batch identifier", "String", "", 0.0, 0.0, "ID", "", 3600, 86400),
    Family("MNT", "Last maintenance", "Timestamp", "", 0.0, 0.0, "TS", "", 86400, 86400 * 2),
    Family("VIB", "High-frequency vibration", "Float32", "mm/s", 0.0, 50.0, "PV"),
)
_FAMILY_INDEX = {f.code: i for i, f in enumerate(FAMILIES)}
# Cumulative weights for the ordinary (non-special) points, per family index above (VIB excluded).
_FAMILY_WEIGHTS = np.array([14, 12, 10, 7, 6, 5, 4, 4, 3, 6, 5, 5, 3, 4, 3, 0], dtype=np.float64)
_FAMILY_CDF = np.cumsum(_FAMILY_WEIGHTS) / _FAMILY_WEIGHTS.sum()

AREAS = ("U100", "U110", "U200", "U250", "U300", "U310", "U400", "U500", "CW", "UTIL", "TANKFARM", "FLARE")
POINT_SOURCES = ("OPC", "OPC", "OPC", "OPC", "MODBUS", "L", "C")
HIGH_DENSITY_EVERY = 250  # index % 250 == 5 → a 0.5 s vibration tag (> 150,000 values a day)
HIGH_DENSITY_SPACING_US = 400_000  # ~0.48 s mean gap after empty slots: ~180,000 values a day

# Scan classes of the interfaces (PI's `/f=` periods, aligned to the hour); a point's `location4` is its 1-based index
# here. Interface and PE points (point sources below) are scanned with probability SCAN_FRACTION, numeric and digital
# families only; a quarter of them archive every scan, the rest only scans that leave a deadband (compression).
SCAN_CLASSES_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
SCANNED_SOURCES = ("OPC", "MODBUS", "C")
SCAN_FRACTION = 0.45
COMPRESSED_SCAN_MAX_S = 600
DEADBAND_BLOCK_US = 60 * 1_000_000  # a compressed point's slot: its scans of a minute (see mock_pi/scans.py)
# PI's compmax: a scanned point archives at least every 8 h (here at 00:00, 08:00 and 16:00 UTC).
COMPMAX_US = 8 * 3600 * 1_000_000
# E|d/dt of the archive's smooth signal| × period / 2π (two sines, amplitudes 0.3 and 0.08 at 1/0.137 the period).
_MEAN_SLOPE = 0.3966
_EVENTS_PER_SLOT = 0.84  # mean events in an irregular point's slot (archive.slot_events)

# Hand-written points at the start of the catalog: classic demo tags and names that stress URL/JSON escaping and
# point-query escapes. PI forbids * ' ? ; { } [ ] | \ ` " in tag names, so quotes and brackets live in descriptors.
SPECIAL_POINTS: tuple[tuple[str, str, str, str, int], ...] = (
    # name, family code, descriptor, point source, spacing seconds
    ("SINUSOID", "AI", "12 Hour Sine Wave", "R", 60),
    ("CDT158", "TI", "Atmospheric Tower OH Vapor", "R", 30),
    ("Température #3/A %", "TI", "Température du réacteur n°3", "OPC", 20),
    ("BA:TEMP.1", "TI", "Batch reactor temperature", "R", 10),
    ("Flow Line 2/B #7 %", "FIC", 'Flow line 2 "branch B" [FT-207]', "OPC", 15),
    ("VIB-HF00005.PV", "VIB", "High-frequency vibration, pump P-101", "OPC", 0),
    ("Tank 12 (North) Level", "LI", "Tank 12 level, 'north' tank", "MODBUS", 120),
    ("Zähler Ölpumpe #2", "CNT", "Betriebsstundenzähler Ölpumpe 2", "MODBUS", 300),
    ("Reactor R-101 Mode", "MODE", "Reactor R-101 controller mode", "OPC", 1800),
    ("Batch ID R-101+102 & Spare", "BATCH", "Current batch on reactor R-101", "L", 7200),
)


@dataclass(frozen=True)
class DataServer:
    index: int
    id: uuid.UUID
    name: str
    path: str
    web_id: str
    server_version: str = "3.4.440.477"

    @property
    def guid_b64(self) -> str:
        return webid.encode_guid(self.id)


@dataclass
class Point:
    """One PI point. Fields after `point_source` drive the deterministic value model in archive.py."""

    web_id: str
    id: int
    name: str
    path: str
    server: DataServer
    point_type: str
    digital_set: DigitalSet | None
    units: str
    span: float
    zero: float
    step: bool
    future: bool
    display_digits: int
    descriptor: str
    point_source: str
    index: int = 0
    key: int = 0
    spacing_us: int = 1
    created_us: int = CREATED_US
    family: str = ""
    duplicates: bool = False  # this tag sometimes stores two events at one timestamp
    system_rate: float = 0.0  # probability that an event is a system digital state
    period_us: int = 1
    phase: float = 0.0
    scan_us: int = 0  # scan period of a point on a scan class; 0 for irregular (unsolicited) points
    archive_rate: float = 1.0  # target fraction of scans archived (1: every scan)
    deadband_frac: float = 0.0  # numeric scan points: compression deadband as a fraction of span (0: none)
    value_rate: int = (
        1  # the emulator's --value-rate: spacing and scan period are the nominal ones divided by it
    )
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def slot_us(self) -> int:
        """Width of the archive's generation slots: an irregular point's mean spacing, a scanned point's scan
        period, or a minute of scans for a point compressed by deadband."""
        if not self.scan_us:
            return self.spacing_us
        return max(self.scan_us, DEADBAND_BLOCK_US) if self.deadband_frac else self.scan_us

    @property
    def events_per_slot(self) -> float:
        """Events the archive expects in a slot, to size reads (1 for irregular points, which have 0.84)."""
        return self.archive_rate * self.slot_us / self.scan_us if self.scan_us else 1.0

    @property
    def scan_class(self) -> int:
        """PI's `location4` for interface points: 1-based index into SCAN_CLASSES_S; 0 when not scanned."""
        return SCAN_CLASSES_S.index(self.scan_us * self.value_rate // 1_000_000) + 1 if self.scan_us else 0

    @property
    def deadband(self) -> float:
        """Compression deadband in engineering units (PI's `compdev`); 0 when every scan is archived."""
        return self.span * self.deadband_frac

    @property
    def digital_set_name(self) -> str:
        return self.digital_set.name if self.digital_set else ""

    @property
    def is_numeric(self) -> bool:
        return self.point_type in ("Float16", "Float32", "Float64", "Int16", "Int32")

    @property
    def is_integer(self) -> bool:
        return self.point_type in ("Int16", "Int32")


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """PI wildcard (`*` any run, `?` one char), case-insensitive, anchored."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def wildcard_match(pattern: str) -> re.Pattern[str]:
    return _wildcard_regex(pattern)


class Catalog:
    """Data servers, digital sets and `config.tags` points; point i lives on server i % data_servers.

    `value_rate` (the emulator's --value-rate) divides every point's spacing and scan period: that many times the
    values per second at real time, from the same seed-derived points (rate 1: the nominal catalog)."""

    def __init__(self, seed: int, tags: int, data_servers: int = 2, value_rate: int = 1) -> None:
        check_value_rate(value_rate)
        self.seed = seed
        self.size = tags
        self.value_rate = value_rate
        self.servers: list[DataServer] = []
        for s in range(data_servers):
            name = f"PISRV{s + 1:02d}"
            guid = webid.stable_guid(seed, "dataserver", name)
            self.servers.append(
                DataServer(s, guid, name, f"\\\\{name}", webid.full(webid.DATA_SERVER, [guid], name))
            )
        self._servers_by_guid = {srv.guid_b64: srv for srv in self.servers}
        self._points: dict[int, Point] = {}
        self._build_vectors()

    # --- vectorised metadata -------------------------------------------------------------------------------------

    def _build_vectors(self) -> None:
        n = self.size
        idx = np.arange(n, dtype=np.uint64)
        base = np.uint64((self.seed * 0x5851F42D4C957F2D) & MASK64)
        h = splitmix64(idx ^ base)
        self._hash = h
        u_family = unit_float(h)
        fam = np.searchsorted(_FAMILY_CDF, u_family, side="right").astype(np.int16)
        fam = np.minimum(fam, len(FAMILIES) - 2)
        high = (np.arange(n) % HIGH_DENSITY_EVERY) == 5
        fam[high] = _FAMILY_INDEX["VIB"]
        self._family = fam
        self._high_density = high
        self._area = (splitmix64(h) % np.uint64(len(AREAS))).astype(np.int16)
        specials = {name for name, *_ in SPECIAL_POINTS}
        names: list[str] = []
        for i in range(n):
            if i < len(SPECIAL_POINTS):
                names.append(SPECIAL_POINTS[i][0])
                continue
            f = FAMILIES[int(fam[i])]
            area = AREAS[int(self._area[i])]
            if i % 97 == 0:
                # Some plants use descriptive tag names with spaces.
                names.append(f"{area} {f.label} {i:05d}")
            else:
                names.append(f"{area}-{f.code}{i:05d}.{f.suffix}")
        assert len(set(names) & specials) <= len(SPECIAL_POINTS)
        self.names = names

    @cached_property
    def _index_by_upper_path(self) -> dict[str, int]:
        return {
            f"{self.servers[i % len(self.servers)].name}\\{nm}".upper(): i for i, nm in enumerate(self.names)
        }

    # --- servers and sets ----------------------------------------------------------------------------------------

    def server(self, web_id: str) -> DataServer | None:
        for srv in self.servers:
            if srv.web_id == web_id:
                return srv
        if len(web_id) >= 26 and web_id[:4] in ("F1DS", "I1DS"):
            return self._servers_by_guid.get(web_id[4:26])
        if web_id.startswith("P1DS"):
            return self.server_by_path(_decode_path(web_id[4:]))
        return None

    def server_by_path(self, path: str) -> DataServer | None:
        name = path.strip().lstrip("\\").upper()
        if name.startswith("PISERVER[") and name.endswith("]"):
            name = name[len("PISERVER[") : -1]
        return next((s for s in self.servers if s.name.upper() == name), None)

    def server_indices(self, server: DataServer) -> range:
        return range(server.index, self.size, len(self.servers))

    def digital_set(self, name: str) -> DigitalSet | None:
        return _SETS_BY_NAME.get(name.upper())

    def enumeration_set_web_id(self, server: DataServer, dset: DigitalSet) -> str:
        guid = webid.stable_guid(self.seed, "enumset", server.name, dset.name)
        return webid.full(webid.ENUMERATION_SET, [server.id, guid], f"{server.name}\\{dset.name}", owner="D")

    def enumeration_value_web_id(self, server: DataServer, dset: DigitalSet, state: str) -> str:
        set_guid = webid.stable_guid(self.seed, "enumset", server.name, dset.name)
        guid = webid.stable_guid(self.seed, "enumvalue", server.name, dset.name, state)
        path = f"{server.name}\\{dset.name}\\{state}"
        return webid.full(webid.ENUMERATION_VALUE, [server.id, set_guid, guid], path, owner="D")

    def enumeration_set(self, web_id: str) -> tuple[DataServer, DigitalSet] | None:
        for srv in self.servers:
            for dset in DIGITAL_SETS:
                if self.enumeration_set_web_id(srv, dset) == web_id:
                    return srv, dset
        if web_id.startswith("P1MSD"):
            return self.enumeration_set_by_path(_decode_path(web_id[5:]))
        return None

    def enumeration_set_by_path(self, path: str) -> tuple[DataServer, DigitalSet] | None:
        parts = path.strip().lstrip("\\").split("\\")
        if len(parts) != 2:
            return None
        srv = self.server_by_path(parts[0])
        dset = self.digital_set(parts[1])
        return (srv, dset) if srv and dset else None

    # --- points --------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.size

    def point_at(self, index: int) -> Point:
        pt = self._points.get(index)
        if pt is None:
            pt = self._make_point(index)
            self._points[index] = pt
        return pt

    def iter_points(self) -> Iterator[Point]:
        for i in range(self.size):
            yield self.point_at(i)

    def point(self, web_id: str) -> Point | None:
        """Resolve a point WebID (Full, IDOnly or PathOnly) to its Point; None when unknown."""
        if len(web_id) >= 32 and web_id[:4] in ("F1DP", "I1DP"):
            srv = self._servers_by_guid.get(web_id[4:26])
            try:
                (point_id,) = struct.unpack("<i", base64.urlsafe_b64decode(web_id[26:32] + "=="))
            except (ValueError, struct.error):
                return None
            index = point_id - 1
            if srv is None or not 0 <= index < self.size or index % len(self.servers) != srv.index:
                return None
            return self.point_at(index)
        if web_id.startswith("P1DP"):
            try:
                return self.point_by_path(_decode_path(web_id[4:]))
            except ValueError:
                return None
        return None

    def point_by_path(self, path: str) -> Point | None:
        """`\\\\SERVER\\TAG` (case-insensitive, as PI tag names are)."""
        index = self._index_by_upper_path.get(path.strip().lstrip("\\").upper())
        return None if index is None else self.point_at(index)

    def filter_indices(
        self, server: DataServer, name_filter: str | None = None, source_filter: str | None = None
    ) -> list[int]:
        indices = self.server_indices(server)
        result: list[int] = list(indices)
        if name_filter and name_filter != "*":
            rx = _wildcard_regex(name_filter)
            result = [i for i in result if rx.match(self.names[i])]
        if source_filter and source_filter != "*":
            rx = _wildcard_regex(source_filter)
            result = [i for i in result if rx.match(self.point_at(i).point_source)]
        return result

    def point_web_id(self, point: Point, web_id_type: str = "Full") -> str:
        kind = web_id_type.lower()
        if kind == "full":
            return point.web_id
        if kind == "idonly":
            return (
                "I1DP"
                + point.server.guid_b64
                + base64.urlsafe_b64encode(struct.pack("<i", point.id)).decode("ascii").rstrip("=")
            )
        if kind == "pathonly":
            return webid.path_only(webid.POINT, point.path)
        raise ValueError(f"webIdType '{web_id_type}' is not supported (use Full, IDOnly or PathOnly).")

    def _make_point(self, i: int) -> Point:
        srv = self.servers[i % len(self.servers)]
        h = int(self._hash[i])
        fam = FAMILIES[int(self._family[i])]
        name = self.names[i]
        descriptor = f"{fam.label} {AREAS[int(self._area[i])]}"
        source = POINT_SOURCES[mix64(h ^ 0x51) % len(POINT_SOURCES)]
        spacing_s: float | None = None
        if i < len(SPECIAL_POINTS):
            _, code, descriptor, source, spacing_s = SPECIAL_POINTS[i]
            fam = FAMILIES[_FAMILY_INDEX[code]]
        if fam.code == "VIB":
            spacing_us = HIGH_DENSITY_SPACING_US
        elif spacing_s:
            spacing_us = int(spacing_s) * 1_000_000
        else:
            # Log-uniform mean spacing between the family's bounds: seconds to hours.
            u = (mix64(h ^ 0x5EED) >> 11) / float(1 << 53)
            lo, hi = np.log(fam.min_spacing_s), np.log(fam.max_spacing_s)
            spacing_us = round(float(np.exp(lo + u * (hi - lo)))) * 1_000_000
        # Slot width must be an even number of quanta (1 ms below a minute, else 1 s) so two events fit apart.
        quantum = 1_000 if spacing_us < 60_000_000 else 1_000_000
        spacing_us = max(2 * quantum, (spacing_us // (2 * quantum)) * 2 * quantum)
        ptype = fam.point_type
        h2 = mix64(h ^ 0xD0)
        path = f"\\\\{srv.name}\\{name}"
        period_us = int(3600 * (2 + (h2 >> 24) % 22)) * 1_000_000
        scan_us, rate, deadband = 0, 1.0, 0.0
        h3 = mix64(h ^ 0x5CA7)
        if (
            i >= len(SPECIAL_POINTS)
            and fam.code != "VIB"
            and ptype not in ("String", "Timestamp")
            and source in SCANNED_SOURCES
            and (h3 >> 11) / float(1 << 53) < SCAN_FRACTION
        ):
            scan_us, rate = _scan_class(spacing_us, h3)
            if rate == 1.0:
                spacing_us = scan_us
            elif ptype != "Digital":
                deadband = _MEAN_SLOPE * 2 * np.pi * scan_us / period_us / rate
        if self.value_rate != 1:
            spacing_us, scan_us, deadband = _faster(spacing_us, scan_us, deadband, self.value_rate)
        web = webid.full(webid.POINT, [srv.id], f"{srv.name}\\{name}", point_id=i + 1)
        step = ptype not in ("Float16", "Float32", "Float64") or (h2 % 10 == 0)
        return Point(
            web_id=web,
            id=i + 1,
            name=name,
            path=path,
            server=srv,
            point_type=ptype,
            digital_set=self.digital_set(fam.digital_set) if fam.digital_set else None,
            units=fam.units,
            span=fam.span,
            zero=fam.zero,
            step=step,
            future=False,
            display_digits=-5 if ptype.startswith("Float") else 0,
            descriptor=descriptor,
            point_source=source,
            index=i,
            key=mix64(h ^ 0xA5C3),
            spacing_us=spacing_us,
            family=fam.code,
            duplicates=(h2 >> 8) % 10 < 3 and not scan_us,
            system_rate=0.0 if (h2 >> 16) % 10 < 3 or ptype in ("String", "Timestamp") else 0.002,
            period_us=period_us,
            phase=((h2 >> 40) % 6283) / 1000.0,
            scan_us=scan_us,
            archive_rate=rate,
            deadband_frac=deadband,
            value_rate=self.value_rate,
        )


MAX_VALUE_RATE = 100


def check_value_rate(rate: int) -> None:
    """A value rate must keep scan periods whole microseconds on the hour's grid: a divisor of 1,000,000, ≤ 100."""
    if (
        not isinstance(rate, int)
        or isinstance(rate, bool)
        or not 1 <= rate <= MAX_VALUE_RATE
        or 1_000_000 % rate
    ):
        raise ValueError(
            f"value_rate must be a whole number from 1 to {MAX_VALUE_RATE} dividing 1,000,000 "
            f"(1, 2, 4, 5, 8, 10, 20, 25, 50, 100, ...), got {rate!r}"
        )


def _faster(spacing_us: int, scan_us: int, deadband: float, rate: int) -> tuple[int, int, float]:
    """(spacing, scan period, deadband) of a point at `rate` times its nominal value rate: an irregular point's mean
    spacing divided (to an even number of quanta, as in _make_point), a scanned point's scan period divided (its
    class keeps its index), and a compressed point's deadband with it, so it keeps as large a share of its scans."""
    every_scan = bool(scan_us) and spacing_us == scan_us
    quantum = 1_000 if spacing_us // rate < 60_000_000 else 1_000_000
    spacing_us = max(2 * quantum, (spacing_us // rate // (2 * quantum)) * 2 * quantum)
    if scan_us:
        scan_us //= rate
        deadband /= rate
        if every_scan:
            spacing_us = scan_us
    return spacing_us, scan_us, deadband


def _scan_class(mean_spacing_us: int, h: int) -> tuple[int, float]:
    """(scan period, fraction of scans archived) for a scanned point that would otherwise be irregular with slots
    of `mean_spacing_us` (0.84 events a slot). A quarter archive every scan of the class nearest that spacing; the
    rest scan at least 1/0.6 times faster (at least every 10 minutes) and archive as many events as the irregular
    point would, as compression keeps only scans that left the deadband."""
    mean_s = mean_spacing_us / 1e6
    if (h >> 3) % 4 == 0:
        return min(SCAN_CLASSES_S, key=lambda c: abs(np.log(c / mean_s))) * 1_000_000, 1.0
    ratio = float(np.exp(np.log(0.15) + (mix64(h ^ 0x7A) >> 11) / float(1 << 53) * np.log(0.6 / 0.15)))
    fits = [c for c in SCAN_CLASSES_S if c <= min(mean_s * ratio, COMPRESSED_SCAN_MAX_S)]
    scan_s = fits[-1] if fits else SCAN_CLASSES_S[0]
    return scan_s * 1_000_000, min(1.0, _EVENTS_PER_SLOT * scan_s / mean_s)


def _decode_path(encoded: str) -> str:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"Malformed path in WebID payload '{encoded}'.") from None
