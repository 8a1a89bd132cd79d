"""The emulator's Asset Framework: one asset server, its databases, element and event-frame templates, a deep element
hierarchy with attributes (PI Point data references onto catalog points, static values), and event frames per UTC day.

Everything is a pure function of config.seed and the scale settings. Elements are built eagerly at start-up (cheap);
attributes are built per element on first use and event frames per (database, UTC day) on first use, then cached.
"""

from __future__ import annotations

import base64
import random
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mock_pi import webid

if TYPE_CHECKING:
    from mock_pi.catalog import Catalog, Point
    from mock_pi.config import EmulatorConfig

SERVER_NAME = "PIAF01"
SERVER_VERSION = "2.10.9.593"
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
# AF reports an open (in-progress) event frame's end as DateTime.MaxValue; PI Web API writes it as this string.
# We answer the same literal so clients that test for it (or for "far future") behave as against a real server.
OPEN_END_TEXT = "9999-12-31T23:59:59Z"
# Longest event frame the generator makes: searches look back this far for frames that started before a window.
MAX_EF_DURATION_US = 3 * US_PER_DAY
# Static attribute values carry no time in AF; PI Web API reports them at the epoch.
STATIC_TIMESTAMP_US = 0
SEVERITIES = ("None", "Information", "Warning", "Minor", "Major", "Critical")


# ------------------------------------------------------------------------------------------------ templates


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """An attribute template: how every element (or event frame) of a template gets this attribute."""

    name: str
    type: str  # Double, Int32, String, DateTime, Boolean, EnumerationValue
    units: str = ""  # units name, e.g. "cubic meter per hour" (PI Point attributes take their point's units)
    units_abbr: str = ""  # e.g. "m3/h"
    pi_point: str | None = None  # "numeric" | "digital" | "captured" (EF: the primary element's point) | None
    family: str = ""  # catalog point family the data reference draws from (FIC flow, TI temperature, ...)
    categories: tuple[str, ...] = ()
    excluded: bool = False
    hidden: bool = False
    config_item: bool = False
    trait: str = ""
    description: str = ""
    children: tuple[AttrSpec, ...] = ()
    enum: tuple[str, ...] = ()  # value names (codes 1..n) for EnumerationValue statics
    enum_set: str = ""
    # Static value generator key: "choice:a|b|c", "range:lo:hi", "int:lo:hi", "date", "bool:p", "serial", "name"
    value: str = ""


@dataclass(eq=False, slots=True)
class ElementTemplate:
    db: Database
    name: str
    description: str
    instance_type: str  # "Element" | "EventFrame"
    base: ElementTemplate | None
    categories: tuple[str, ...]
    own_specs: tuple[AttrSpec, ...]
    id: uuid.UUID
    web_id: str
    path: str
    severity: str = "None"
    can_be_acknowledged: bool = False

    @property
    def specs(self) -> tuple[AttrSpec, ...]:
        """Attribute templates including those inherited from base templates (base first, as AF lists them)."""
        return (self.base.specs if self.base else ()) + self.own_specs

    def is_a(self, name: str) -> bool:
        """True when this template or one of its bases is named `name` (AF's templateName filter matches derived)."""
        t: ElementTemplate | None = self
        low = name.lower()
        while t is not None:
            if t.name.lower() == low:
                return True
            t = t.base
        return False

    def lineage(self) -> list[ElementTemplate]:
        out: list[ElementTemplate] = []
        t: ElementTemplate | None = self
        while t is not None:
            out.append(t)
            t = t.base
        return out


def _pi(name: str, family: str, cats: tuple[str, ...] = ("Process Data",), **kw: Any) -> AttrSpec:
    return AttrSpec(name, "Double", pi_point="numeric", family=family, categories=cats, **kw)


def _limit(name: str, trait: str, value: str) -> AttrSpec:
    # Limits are in the units of the parent attribute's point (set when the attribute is built).
    return AttrSpec(name, "Double", categories=("Limits",), trait=trait, value=value)


# Catalog units (abbreviations) → AF unit names.
UNIT_NAMES = {
    "m3/h": "cubic meter per hour",
    "°C": "degree Celsius",
    "bar": "bar",
    "%": "percent",
    "ppm": "parts per million",
    "kW": "kilowatt",
    "rpm": "revolutions per minute",
    "count": "count",
    "mm/s": "millimeter per second",
}


_CRITICALITY = ("High", "Medium", "Low")
_NAMEPLATE = ("Nameplate",)

# (name, description, base, categories, attribute templates)
_ELEMENT_TEMPLATES: tuple[tuple[str, str, str | None, tuple[str, ...], tuple[AttrSpec, ...]], ...] = (
    (
        "Enterprise",
        "Top of the asset hierarchy",
        None,
        ("Organisation",),
        (
            AttrSpec(
                "Region",
                "String",
                categories=("Configuration",),
                config_item=True,
                value="choice:EMEA|AMER|APAC",
            ),
            AttrSpec("Reporting Currency", "String", categories=("Configuration",), value="choice:USD|EUR"),
        ),
    ),
    (
        "Site",
        "Production site",
        None,
        ("Location",),
        (
            AttrSpec("Latitude", "Double", "degree", "°", categories=("Location",), value="range:-60:60"),
            AttrSpec("Longitude", "Double", "degree", "°", categories=("Location",), value="range:-180:180"),
            AttrSpec("Site Code", "String", categories=("Configuration",), config_item=True, value="serial"),
            AttrSpec("Commissioned", "DateTime", categories=("Configuration",), value="date"),
            AttrSpec("Headcount", "Int32", categories=("Configuration",), value="int:20:900"),
            _pi("Site Power", "JI", ("Energy",)),
        ),
    ),
    (
        "Area",
        "Process area",
        None,
        ("Process",),
        (
            AttrSpec("Area Code", "String", categories=("Configuration",), value="serial"),
            _pi("Power", "JI", ("Energy",)),
        ),
    ),
    (
        "Unit",
        "Process unit",
        None,
        ("Process",),
        (
            _pi("Throughput", "FIC"),
            AttrSpec(
                "Status", "EnumerationValue", pi_point="digital", family="HS", categories=("Process Data",)
            ),
            AttrSpec("Running", "Boolean", categories=("Configuration",), value="bool:0.9"),
            AttrSpec("Design Capacity", "Double", "cubic meter per hour", "m3/h", value="range:50:500"),
        ),
    ),
    (
        "Equipment",
        "Base template for equipment",
        None,
        ("Equipment",),
        (
            AttrSpec(
                "Manufacturer",
                "String",
                categories=_NAMEPLATE,
                value="choice:Sulzer|KSB|Flowserve|Atlas Copco|Siemens|ABB",
            ),
            AttrSpec("Model", "String", categories=_NAMEPLATE, value="serial"),
            AttrSpec("Install Date", "DateTime", categories=_NAMEPLATE, value="date"),
            AttrSpec("Rated Power", "Double", "kilowatt", "kW", categories=_NAMEPLATE, value="range:5:900"),
            AttrSpec(
                "Criticality",
                "EnumerationValue",
                categories=("Configuration",),
                enum=_CRITICALITY,
                enum_set="Criticality",
                value="enum",
            ),
            AttrSpec("In Service", "Boolean", categories=("Configuration",), value="bool:0.95"),
            AttrSpec("Asset Tag", "String", hidden=True, description="CMMS key (hidden)", value="serial"),
        ),
    ),
    (
        "Pump",
        "Centrifugal pump",
        "Equipment",
        ("Rotating Equipment",),
        (
            _pi("Flow", "FIC"),
            _pi(
                "Discharge Pressure",
                "PI",
                children=(
                    _limit("High Limit", "LimitHi", "range:18:22"),
                    _limit("Low Limit", "LimitLo", "range:0.5:2"),
                ),
            ),
            _pi("Speed", "SI"),
            AttrSpec("Efficiency", "Double", "percent", "%", categories=_NAMEPLATE, value="range:55:90"),
        ),
    ),
    (
        "Compressor",
        "Gas compressor",
        "Equipment",
        ("Rotating Equipment",),
        (
            _pi("Suction Pressure", "PI"),
            _pi("Discharge Pressure", "PI"),
            _pi("Temperature", "TI"),
            _pi("Legacy Vibration", "VIB", excluded=True, description="Old DCS tag, superseded"),
        ),
    ),
    (
        "Tank",
        "Storage tank",
        "Equipment",
        ("Static Equipment",),
        (
            _pi(
                "Level",
                "LI",
                children=(
                    _limit("HiHi", "LimitHiHi", "range:90:98"),
                    _limit("LoLo", "LimitLoLo", "range:2:8"),
                ),
            ),
            _pi("Temperature", "TI"),
            AttrSpec(
                "Capacity", "Double", "cubic meter", "m3", categories=_NAMEPLATE, value="range:100:5000"
            ),
            AttrSpec(
                "Product",
                "String",
                categories=("Configuration",),
                value="choice:Ethanol|Naphtha|Water|Caustic",
            ),
        ),
    ),
    (
        "Meter",
        "Flow meter",
        "Equipment",
        ("Metering",),
        (
            _pi("Flow", "FIC"),
            _pi("Totalizer", "CNT"),
            AttrSpec("Meter Factor", "Double", value="range:0.98:1.02"),
        ),
    ),
    (
        "Motor",
        "Electric motor",
        None,
        ("Rotating Equipment",),
        (
            _pi("Power", "JI", ("Energy",)),
            _pi("Winding Temperature", "TI"),
            AttrSpec(
                "Rated Speed",
                "Int32",
                "revolutions per minute",
                "rpm",
                categories=_NAMEPLATE,
                value="int:900:3600",
            ),
        ),
    ),
    (
        "Crusher",
        "Cone crusher",
        "Equipment",
        ("Rotating Equipment",),
        (
            _pi("Feed Flow", "FIC"),
            _pi("Power Draw", "JI", ("Energy",)),
            AttrSpec("Closed Side Setting", "Double", "millimeter", "mm", value="range:8:40"),
        ),
    ),
    (
        "Conveyor",
        "Belt conveyor",
        "Equipment",
        ("Rotating Equipment",),
        (
            _pi("Drive Speed", "SI"),
            _pi("Drive Power", "JI", ("Energy",)),
            AttrSpec("Length", "Double", "meter", "m", categories=_NAMEPLATE, value="range:50:2000"),
        ),
    ),
    (
        "Haul Truck",
        "Haul truck",
        "Equipment",
        ("Mobile Equipment",),
        (
            _pi("Loads Hauled", "CNT"),
            _pi("Fuel Level", "LI"),
            AttrSpec("Engine Hours", "Int32", "hour", "h", value="int:100:40000"),
        ),
    ),
    ("Collection", "Flat collection of like assets", None, ("Organisation",), ()),
)

_DOWNTIME_REASONS = ("Planned Maintenance", "Breakdown", "Power Loss", "No Feed", "Operator Stop")

# (name, description, categories, default severity, can be acknowledged, attribute templates)
_EF_TEMPLATES: tuple[tuple[str, str, tuple[str, ...], str, bool, tuple[AttrSpec, ...]], ...] = (
    (
        "Batch",
        "Production batch",
        ("Production",),
        "None",
        False,
        (
            AttrSpec(
                "Product",
                "String",
                categories=("Batch Data",),
                value="choice:Grade A|Grade B|Grade C|Resin X",
            ),
            AttrSpec("Batch ID", "String", categories=("Batch Data",), value="name"),
            AttrSpec(
                "Target Quantity",
                "Double",
                "kilogram",
                "kg",
                categories=("Batch Data",),
                value="range:1000:9000",
            ),
            AttrSpec("Temperature", "Double", pi_point="captured", family="TI", categories=("Process Data",)),
            AttrSpec("Operator", "String", categories=("Batch Data",), value="choice:Alex|Sam|Kim|Noor|Lee"),
        ),
    ),
    (
        "Batch Phase",
        "Phase of a production batch",
        ("Production",),
        "None",
        False,
        (
            AttrSpec("Phase Number", "Int32", categories=("Batch Data",), value="phase"),
            AttrSpec("Temperature", "Double", pi_point="captured", family="TI", categories=("Process Data",)),
        ),
    ),
    (
        "Downtime",
        "Unplanned or planned stop",
        ("Reliability",),
        "Warning",
        False,
        (
            AttrSpec(
                "Reason",
                "EnumerationValue",
                categories=("Reliability",),
                enum=_DOWNTIME_REASONS,
                enum_set="Downtime Reasons",
                value="enum",
            ),
            AttrSpec(
                "Lost Production", "Double", "tonne", "t", categories=("Reliability",), value="range:1:400"
            ),
            AttrSpec("Process Value", "Double", pi_point="captured", categories=("Process Data",)),
        ),
    ),
    (
        "Alarm",
        "Process alarm",
        ("Alarms",),
        "Minor",
        True,
        (
            AttrSpec("Priority", "Int32", categories=("Alarms",), value="int:1:4"),
            AttrSpec("Limit", "Double", categories=("Alarms",), value="range:10:100"),
            AttrSpec("Trigger Value", "Double", pi_point="captured", categories=("Process Data",)),
            AttrSpec(
                "Alarm Text",
                "String",
                categories=("Alarms",),
                value="choice:High|High High|Low|Low Low|Deviation",
            ),
        ),
    ),
)

# Event-frame generation: template, weight, min/max duration (s), severities to draw from.
_EF_KINDS: tuple[tuple[str, float, int, int, tuple[str, ...]], ...] = (
    ("Batch", 0.35, 2 * 3600, 8 * 3600, ("None",)),
    ("Downtime", 0.25, 10 * 60, 6 * 3600, ("Warning", "Minor", "Major")),
    ("Alarm", 0.40, 60, 2 * 3600, ("Information", "Warning", "Minor", "Major", "Critical")),
)
_BATCH_PHASES = (("Charge", 0.2), ("React", 0.6), ("Discharge", 0.2))
# A few alarms stand for days (a stuck sensor nobody acknowledges), so there are always some frames in progress.
_LONG_ALARM_SHARE = 0.03
_LONG_ALARM_S = (US_PER_DAY // US_PER_S, 3 * US_PER_DAY // US_PER_S)


@dataclass(frozen=True, slots=True)
class _Profile:
    name: str
    description: str
    root: str
    sites: tuple[str, ...]
    areas: tuple[str, ...]
    unit_prefix: str
    equipment: tuple[tuple[str, str], ...]  # (template, tag prefix)
    with_motor: tuple[str, ...]  # equipment templates that get a Motor child
    collection: str
    collection_template: str
    collection_prefix: str


_PROFILES = (
    _Profile(
        "Plant Operations",
        "Chemical plants: sites, process areas, units and equipment",
        "Contoso Chemicals",
        (
            "Houston",
            "Rotterdam",
            "Singapore",
            "Antwerp",
            "Ludwigshafen",
            "Baton Rouge",
            "Jurong",
            "Tarragona",
        ),
        ("Reaction", "Separation", "Utilities"),
        "Unit",
        (("Pump", "P"), ("Compressor", "K"), ("Tank", "T"), ("Meter", "FT")),
        ("Pump", "Compressor"),
        "Custody Metering",
        "Meter",
        "FQ",
    ),
    _Profile(
        "Mining Site",
        "Open-pit mines: pits, circuits, lines and equipment",
        "Northern Mining",
        ("Pit North", "Pit South", "Pit East", "Pit West", "Ridge", "Valley"),
        ("Crushing", "Conveying", "Processing"),
        "Line",
        (("Crusher", "CR"), ("Conveyor", "CV"), ("Pump", "P"), ("Tank", "T")),
        ("Crusher", "Conveyor", "Pump"),
        "Haul Fleet",
        "Haul Truck",
        "HT",
    ),
)


# ------------------------------------------------------------------------------------------------ objects


@dataclass(eq=False, slots=True)
class AssetServer:
    name: str
    id: uuid.UUID
    web_id: str
    path: str
    databases: list[Database] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Database:
    server: AssetServer
    index: int
    name: str
    description: str
    id: uuid.UUID
    web_id: str
    path: str
    templates: dict[str, ElementTemplate] = field(default_factory=dict)  # lower name → template
    roots: list[Element] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)  # pre-order
    equipment: list[Element] = field(default_factory=list)  # candidates for event-frame primary references


@dataclass(eq=False, slots=True)
class Element:
    db: Database
    parent: Element | None
    name: str
    description: str
    path: str
    template: ElementTemplate
    id: uuid.UUID
    web_id: str
    index: int  # pre-order position in its database
    pi_slot: int  # first slot of the global round-robin over catalog points
    children: list[Element] = field(default_factory=list)
    attributes_cache: list[Attribute] | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        return self.template.categories

    def descendants(self) -> Iterator[Element]:
        """Pre-order descendants (not including self)."""
        return _preorder(self.children)


@dataclass(eq=False, slots=True)
class Attribute:
    owner: Element | EventFrame
    parent: Attribute | None
    spec: AttrSpec
    template: ElementTemplate  # the element/EF template that defines the attribute template
    name: str
    path: str
    id: uuid.UUID
    web_id: str
    type: str
    type_qualifier: str
    units_name: str
    units_abbr: str
    point: Point | None
    # Static value: float, int, str, bool, DateTime as µs, or (name, code) for EnumerationValue.
    value: Any
    children: list[Attribute] = field(default_factory=list)

    @property
    def config_string(self) -> str:
        """PI Point data reference config string, `\\\\SERVER\\tag;UOM=...` (the point's source units)."""
        if self.point is None:
            return ""
        uom = f";UOM={self.units_abbr}" if self.units_abbr else ""
        return f"{self.point.path}{uom}"

    def descendants(self) -> Iterator[Attribute]:
        return _preorder(self.children)


@dataclass(eq=False, slots=True)
class EventFrame:
    db: Database
    parent: EventFrame | None
    name: str
    path: str
    template: ElementTemplate
    id: uuid.UUID
    web_id: str
    start_us: int
    planned_end_us: int
    severity: str
    refs: tuple[Element, ...]  # primary first
    ordinal: int  # index within its day (or phase number for children)
    children: list[EventFrame] = field(default_factory=list)
    attributes_cache: list[Attribute] | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        return self.template.categories

    @property
    def primary(self) -> Element:
        return self.refs[0]

    def descendants(self) -> Iterator[EventFrame]:
        return _preorder(self.children)


# ------------------------------------------------------------------------------------------------ helpers


def _preorder(children: list[Any]) -> Iterator[Any]:
    """Pre-order walk of a tree given the root's children (elements, attributes and event frames share it)."""
    stack = list(reversed(children))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def wildcard(pattern: str | None) -> re.Pattern[str] | None:
    """AF name filter (`*` any run, `?` one char, case-insensitive, whole name) → compiled regex; None = no filter."""
    if pattern is None or pattern == "" or pattern == "*":
        return None
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def day_of(us: int) -> int:
    return us // US_PER_DAY


def _decode_path(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _norm(path: str) -> str:
    """Lookup key for an AF path: AF paths are case-insensitive; WebIDs carry them upper-cased without the `\\\\`."""
    return path.strip().lstrip("\\").upper()


_EF_SEGMENT = re.compile(r"\\EventFrames\[([^\]]*)\]", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------ the model


class AFModel:
    """The AF side of the emulator. Built once by EmulatorState; thread-safe for concurrent readers."""

    def __init__(self, config: EmulatorConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.seed = int(config.seed)
        self.elements_per_db = max(1, int(getattr(config, "elements_per_db", 300)))
        self.event_frames_per_day = max(0, int(getattr(config, "event_frames_per_day", 40)))
        self._lock = threading.RLock()
        self._pools = _point_pools(catalog)
        self._by_web_id: dict[str, Any] = {}
        self._by_path: dict[str, Any] = {}
        self._ef_days: OrderedDict[tuple[int, int], list[EventFrame]] = OrderedDict()
        self._ef_day_index: dict[tuple[int, int], dict[str, EventFrame]] = {}
        # Admin edits survive cache eviction: event-frame WebId → closed end time (µs).
        self._closed: dict[str, int] = {}
        guid = webid.stable_guid(self.seed, "assetserver", SERVER_NAME)
        self.server = AssetServer(
            SERVER_NAME, guid, webid.full(webid.ASSET_SERVER, [guid], SERVER_NAME), "\\\\" + SERVER_NAME
        )
        self._register(self.server)
        slot = 0
        for i in range(max(0, int(getattr(config, "af_databases", 2)))):
            db, slot = self._build_database(i, slot)
            self.server.databases.append(db)

    # --------------------------------------------------------------------------------------- building

    def _register(self, obj: Any) -> None:
        self._by_web_id[obj.web_id] = obj
        self._by_path[_norm(obj.path)] = obj

    def _build_database(self, index: int, slot: int) -> tuple[Database, int]:
        profile = _PROFILES[index % len(_PROFILES)]
        name = profile.name if index < len(_PROFILES) else f"{profile.name} {index // len(_PROFILES) + 1}"
        path = f"{self.server.path}\\{name}"
        guid = webid.stable_guid(self.seed, "database", name)
        db = Database(
            self.server,
            index,
            name,
            profile.description,
            guid,
            webid.full(webid.ASSET_DATABASE, [self.server.id, guid], path),
            path,
        )
        self._register(db)
        self._build_templates(db)
        return db, self._build_hierarchy(db, profile, slot)

    def _template(self, db: Database, name: str, description: str, instance_type: str, base: str | None,
                  categories: tuple[str, ...], specs: tuple[AttrSpec, ...], severity: str = "None",
                  can_ack: bool = False) -> ElementTemplate:  # fmt: skip
        path = f"{db.path}\\ElementTemplates[{name}]"
        guid = webid.stable_guid(self.seed, "template", db.name, name)
        t = ElementTemplate(
            db,
            name,
            description,
            instance_type,
            db.templates[base.lower()] if base else None,
            categories,
            specs,
            guid,
            webid.full(webid.ELEMENT_TEMPLATE, [self.server.id, guid], path),
            path,
            severity,
            can_ack,
        )
        db.templates[name.lower()] = t
        self._register(t)
        return t

    def _build_templates(self, db: Database) -> None:
        for name, desc, base, cats, specs in _ELEMENT_TEMPLATES:
            self._template(db, name, desc, "Element", base, cats, specs)
        for name, desc, cats, sev, ack, specs in _EF_TEMPLATES:
            self._template(db, name, desc, "EventFrame", None, cats, specs, sev, ack)

    def _build_hierarchy(self, db: Database, p: _Profile, slot: int) -> int:
        rng = random.Random(f"{self.seed}/hierarchy/{db.name}")
        budget = self.elements_per_db
        # One in five elements sits flat under a single collection element, so a large database has one parent
        # with well over 1,200 children (clients must follow paging links); the rest form the deep tree.
        n_collection = budget // 5
        tree_budget = max(0, budget - n_collection - 2)
        counter = [0, slot]

        def add(parent: Element | None, name: str, template: str, description: str) -> Element:
            t = db.templates[template.lower()]
            path = f"{parent.path if parent else db.path}\\{name}"
            guid = webid.stable_guid(self.seed, "element", path)
            el = Element(
                db,
                parent,
                name,
                description,
                path,
                t,
                guid,
                webid.full(webid.ELEMENT, [self.server.id, guid], path),
                counter[0],
                counter[1],
            )
            counter[0] += 1
            counter[1] += sum(_count_pi(s) for s in t.specs)
            (parent.children if parent else db.roots).append(el)
            db.elements.append(el)
            self._register(el)
            return el

        root = add(None, p.root, "Enterprise", f"{p.root} enterprise")
        used = 1
        site_no = 0
        while True:
            plan = self._plan_site(rng, p)
            size = 1 + len(p.areas) + sum(1 + sum(1 + (t in p.with_motor) for t in unit) for unit in plan)
            if site_no > 0 and used + size > tree_budget + 1:
                break
            base_name = p.sites[site_no % len(p.sites)]
            site_name = base_name if site_no < len(p.sites) else f"{base_name} {site_no // len(p.sites) + 1}"
            site = add(root, site_name, "Site", f"{site_name} site")
            units_per_area = len(plan) // len(p.areas)
            for a_i, area_name in enumerate(p.areas):
                area = add(site, area_name, "Area", f"{area_name} area, {site_name}")
                for u_i in range(units_per_area):
                    unit_no = (a_i + 1) * 100 + u_i + 1
                    unit = add(
                        area, f"{p.unit_prefix} {unit_no}", "Unit", f"{p.unit_prefix} {unit_no}, {site_name}"
                    )
                    for e_i, tmpl in enumerate(plan[a_i * units_per_area + u_i]):
                        prefix = dict(p.equipment)[tmpl]
                        eq_name = f"{prefix}-{unit_no}{e_i + 1:02d}"
                        eq = add(unit, eq_name, tmpl, f"{db.templates[tmpl.lower()].description} {eq_name}")
                        db.equipment.append(eq)
                        if tmpl in p.with_motor:
                            add(eq, "Motor", "Motor", f"Drive motor of {eq_name}")
            used += size
            site_no += 1
        if n_collection:
            coll = add(root, p.collection, "Collection", f"{p.collection} ({n_collection} assets)")
            width = max(4, len(str(n_collection)))
            t = db.templates[p.collection_template.lower()]
            for i in range(n_collection):
                name = f"{p.collection_prefix}-{i + 1:0{width}d}"
                db.equipment.append(add(coll, name, p.collection_template, f"{t.description} {name}"))
        return counter[1]

    @staticmethod
    def _plan_site(rng: random.Random, p: _Profile) -> list[list[str]]:
        """Equipment templates per unit for one site: 3 units per area, 3-5 equipment per unit."""
        kinds = [t for t, _ in p.equipment]
        return [[rng.choice(kinds) for _ in range(rng.randint(3, 5))] for _ in range(3 * len(p.areas))]

    # --------------------------------------------------------------------------------------- lookups

    @property
    def databases(self) -> list[Database]:
        return self.server.databases

    def database(self, web_id: str) -> Database | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Database) else None

    def element(self, web_id: str) -> Element | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Element) else None

    def template(self, web_id: str) -> ElementTemplate | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, ElementTemplate) else None

    def attribute(self, web_id: str) -> Attribute | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Attribute) else None

    def event_frame(self, web_id: str) -> EventFrame | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, EventFrame) else None

    def resolve(self, web_id: str) -> Any:
        """Any AF object by WebID: Full ('F1') as we issue them, or PathOnly ('P1') as clients may build them."""
        obj = self._by_web_id.get(web_id)
        if obj is not None:
            return obj
        if len(web_id) < 5 or web_id[1] != "1" or web_id[0] not in "FP":
            return None
        full = web_id[0] == "F"
        marker = web_id[2:4]
        if marker == webid.ATTRIBUTE:
            path = _decode_path(web_id[5 + (66 if full else 0) :])
            found = self.attribute_by_path(path) if path else None
        elif marker == webid.EVENT_FRAME:
            path = _decode_path(web_id[4 + (44 if full else 0) :])
            found = self.event_frame_by_path(path) if path else None
        elif not full:
            path = _decode_path(web_id[4:])
            found = self._by_path.get(_norm(path)) if path else None
        else:
            return None
        if found is None:
            return None
        # A Full WebID must match what we issued (GUIDs included); PathOnly only needs the right kind of object.
        if full and found.web_id != web_id:
            return None
        if (
            not full
            and webid.path_only(marker, found.path, owner=web_id[4] if marker == webid.ATTRIBUTE else "")
            != web_id
        ):
            return None
        return found

    def by_path(self, path: str) -> Any:
        """Server, database, template, element, attribute (`E|A|B`) or event frame by its AF path."""
        if "|" in path:
            return self.attribute_by_path(path)
        if _EF_SEGMENT.search(path):
            return self.event_frame_by_path(path)
        return self._by_path.get(_norm(path))

    def attribute_by_path(self, path: str) -> Attribute | None:
        owner_path, _, rest = path.partition("|")
        if not rest:
            return None
        owner: Element | EventFrame | None
        if _EF_SEGMENT.search(owner_path):
            owner = self.event_frame_by_path(owner_path)
        else:
            found = self._by_path.get(_norm(owner_path))
            owner = found if isinstance(found, Element) else None
        if owner is None:
            return None
        attrs = self.attributes(owner)
        attr: Attribute | None = None
        for part in rest.split("|"):
            low = part.lower()
            attr = next((a for a in attrs if a.name.lower() == low), None)
            if attr is None:
                return None
            attrs = attr.children
        return attr

    def event_frame_by_path(self, path: str) -> EventFrame | None:
        m = _EF_SEGMENT.search(path)
        if m is None:
            return None
        db = self._by_path.get(_norm(path[: m.start()]))
        if not isinstance(db, Database):
            return None
        names = [seg.group(1) for seg in _EF_SEGMENT.finditer(path)]
        # The whole path must be EventFrames[...] segments after the database.
        if "".join(f"\\EventFrames[{n}]" for n in names).upper() != path[m.start() :].upper():
            return None
        top = self._frame_by_name(db, names[0])
        for child_name in names[1:]:
            if top is None:
                return None
            low = child_name.lower()
            top = next((c for c in top.children if c.name.lower() == low), None)
        return top

    def element_by_path(self, path: str) -> Element | None:
        found = self._by_path.get(_norm(path))
        return found if isinstance(found, Element) else None

    # --------------------------------------------------------------------------------------- attributes

    def attributes(self, owner: Element | EventFrame) -> list[Attribute]:
        """Top-level attributes of an element or event frame (built on first use, then cached)."""
        cached = owner.attributes_cache
        if cached is None:
            with self._lock:
                cached = owner.attributes_cache
                if cached is None:
                    cached = self._build_attributes(owner)
                    owner.attributes_cache = cached
        return cached

    def _build_attributes(self, owner: Element | EventFrame) -> list[Attribute]:
        rng = random.Random(f"{self.seed}/attributes/{owner.path}")
        slot = owner.pi_slot if isinstance(owner, Element) else 0
        owner_marker = "E" if isinstance(owner, Element) else "F"
        out: list[Attribute] = []

        def build(spec: AttrSpec, tmpl: ElementTemplate, parent: Attribute | None, path: str) -> Attribute:
            nonlocal slot
            point: Point | None = None
            if spec.pi_point in ("numeric", "digital"):
                point = self._pick_point(spec.family, slot)
                slot += 1
            elif spec.pi_point == "captured" and isinstance(owner, EventFrame):
                point = self._captured_point(owner.primary, spec.family)
            type_, qualifier = spec.type, spec.enum_set
            units_abbr = spec.units_abbr
            if point is not None:
                units_abbr = point.units
                if point.point_type == "Digital":
                    type_, qualifier = "EnumerationValue", point.digital_set_name
                else:
                    type_, qualifier = ("Int32" if point.point_type in ("Int16", "Int32") else "Double"), ""
            elif parent is not None and parent.point is not None and spec.categories == ("Limits",):
                units_abbr = parent.units_abbr
            guid = webid.stable_guid(self.seed, "attribute", path)
            attr = Attribute(
                owner,
                parent,
                spec,
                tmpl,
                spec.name,
                path,
                guid,
                webid.full(webid.ATTRIBUTE, [self.server.id, owner.id, guid], path, owner=owner_marker),
                type_,
                qualifier,
                spec.units
                if not units_abbr or units_abbr == spec.units_abbr
                else UNIT_NAMES.get(units_abbr, units_abbr),
                units_abbr,
                point,
                None if spec.pi_point else _static_value(spec, rng, owner),
            )
            attr.children = [build(c, tmpl, attr, f"{path}|{c.name}") for c in spec.children]
            return attr

        for tmpl in reversed(owner.template.lineage()):
            for spec in tmpl.own_specs:
                out.append(build(spec, tmpl, None, f"{owner.path}|{spec.name}"))
        return out

    def _captured_point(self, element: Element, family: str) -> Point | None:
        """The PI point an event-frame attribute captures: the primary element's first PI Point attribute of the
        wanted family (any numeric one when no family is asked), else a point of that family chosen by element."""
        for a in self.attributes(element):
            for x in (a, *a.descendants()):
                if (
                    x.point is not None
                    and x.spec.pi_point == "numeric"
                    and (not family or x.spec.family == family)
                ):
                    return x.point
        return self._pick_point(family, element.index)

    def _pick_point(self, family: str, slot: int) -> Point | None:
        """Round-robin over the catalog points of a family (any numeric point when the family has none)."""
        pool = self._pools.get(family) or self._pools.get("")
        if not pool:
            return None
        return self.catalog.point_at(pool[slot % len(pool)])

    def stream_point(self, web_id: str) -> Point | None:
        """The catalog point behind an attribute with a PI Point data reference (for /streams/{webId}/...)."""
        attr = self.attribute(web_id)
        return attr.point if attr is not None else None

    def stream_time_context(self, web_id: str, now_us: int) -> tuple[int, int] | None:
        """Default (start, end) of an event-frame attribute's stream (the frame's own range); None otherwise."""
        attr = self.attribute(web_id)
        if attr is None or not isinstance(attr.owner, EventFrame):
            return None
        ef = attr.owner
        end = self.end_us(ef, now_us)
        return ef.start_us, now_us if end is None else end

    def all_attributes(
        self, owner: Element | EventFrame | Attribute, *, full_hierarchy: bool
    ) -> list[Attribute]:
        """Attributes of an element or event frame (child attributes of an attribute); with full_hierarchy,
        child attributes follow their parent (pre-order)."""
        top = owner.children if isinstance(owner, Attribute) else self.attributes(owner)
        if not full_hierarchy:
            return list(top)
        out: list[Attribute] = []
        for a in top:
            out.append(a)
            out.extend(a.descendants())
        return out

    # --------------------------------------------------------------------------------------- elements

    def find_elements(
        self,
        scope: Iterable[Element],
        *,
        name_filter: str | None = None,
        description_filter: str | None = None,
        template_name: str | None = None,
        category_name: str | None = None,
    ) -> list[Element]:
        name_re = wildcard(name_filter)
        desc_re = wildcard(description_filter)
        cat = category_name.lower() if category_name else None
        out = []
        for el in scope:
            if name_re is not None and not name_re.match(el.name):
                continue
            if desc_re is not None and not desc_re.match(el.description):
                continue
            if template_name and not el.template.is_a(template_name):
                continue
            if cat is not None and cat not in (c.lower() for c in el.categories):
                continue
            out.append(el)
        return out

    # --------------------------------------------------------------------------------------- event frames

    def end_us(self, ef: EventFrame, now_us: int) -> int | None:
        """The frame's end as of now, or None while it is in progress (admin closes override the plan)."""
        closed = self._closed.get(ef.web_id)
        if closed is not None:
            return closed
        return ef.planned_end_us if ef.planned_end_us <= now_us else None

    def close_event_frame(self, ef: EventFrame, end_us: int, now_us: int) -> None:
        """Close an in-progress frame at end_us (admin). Raises ValueError when that is not possible."""
        with self._lock:
            if self.end_us(ef, now_us) is not None:
                raise ValueError(
                    f"Event frame '{ef.name}' is not in progress; only open frames can be closed."
                )
            if end_us < ef.start_us:
                raise ValueError(f"EndTime is before the event frame's StartTime for '{ef.name}'.")
            self._closed[ef.web_id] = end_us

    def frames_for_day(self, db: Database, day: int) -> list[EventFrame]:
        """All top-level frames generated for one UTC day (regardless of now), cached LRU."""
        key = (db.index, day)
        with self._lock:
            frames = self._ef_days.get(key)
            if frames is not None:
                self._ef_days.move_to_end(key)
                return frames
            frames = self._generate_day(db, day)
            self._ef_days[key] = frames
            self._ef_day_index[key] = {f.name.upper(): f for f in frames}
            while len(self._ef_days) > 64:
                old, _ = self._ef_days.popitem(last=False)
                self._ef_day_index.pop(old, None)
            return frames

    def _frame_by_name(self, db: Database, name: str) -> EventFrame | None:
        parts = name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) != 8:
            return None
        try:
            day = day_of(
                int(datetime.strptime(parts[1], "%Y%m%d").replace(tzinfo=UTC).timestamp()) * US_PER_S
            )
        except ValueError:
            return None
        self.frames_for_day(db, day)
        with self._lock:
            index = self._ef_day_index.get((db.index, day))
            return index.get(name.upper()) if index else None

    def _generate_day(self, db: Database, day: int) -> list[EventFrame]:
        n = self.event_frames_per_day
        if n == 0 or not db.equipment:
            return []
        # Vectorised draws: 10,000 frames a day must generate in well under a second.
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0xEF, db.index, day + 1_000_000])
        offsets = np.sort(rng.integers(0, 86_400, n)).astype(np.int64) * US_PER_S
        weights = np.array([k[1] for k in _EF_KINDS])
        kinds = rng.choice(len(_EF_KINDS), size=n, p=weights / weights.sum())
        frac = rng.random(n)
        long_alarm = rng.random(n) < _LONG_ALARM_SHARE
        sev_pick = rng.integers(0, 1 << 30, n)
        primary = rng.integers(0, len(db.equipment), n)
        day_start = day * US_PER_DAY
        stamp = datetime.fromtimestamp(day_start // US_PER_S, UTC).strftime("%Y%m%d")
        width = max(4, len(str(n - 1)))
        out: list[EventFrame] = []
        for i in range(n):
            kind, _, lo, hi, sevs = _EF_KINDS[int(kinds[i])]
            if kind == "Alarm" and long_alarm[i]:
                lo, hi = _LONG_ALARM_S
            duration = (lo + int(frac[i] * (hi - lo))) * US_PER_S
            start = day_start + int(offsets[i])
            eq = db.equipment[int(primary[i])]
            refs = (eq, eq.parent) if kind == "Batch" and eq.parent is not None else (eq,)
            ef = self._make_frame(
                db, None, f"{kind}-{stamp}-{i:0{width}d}", kind, start, start + duration,
                sevs[int(sev_pick[i]) % len(sevs)], refs, i,
            )  # fmt: skip
            if kind == "Batch":
                t = start
                for p_i, (phase, share) in enumerate(_BATCH_PHASES):
                    end = start + duration if p_i == len(_BATCH_PHASES) - 1 else t + int(duration * share)
                    ef.children.append(
                        self._make_frame(db, ef, phase, "Batch Phase", t, end, "None", refs, p_i + 1)
                    )
                    t = end
            out.append(ef)
        return out

    def _make_frame(self, db: Database, parent: EventFrame | None, name: str, template: str, start: int,
                    end: int, severity: str, refs: tuple[Element, ...], ordinal: int) -> EventFrame:  # fmt: skip
        path = f"{parent.path if parent else db.path}\\EventFrames[{name}]"
        guid = webid.stable_guid(self.seed, "eventframe", path)
        return EventFrame(
            db,
            parent,
            name,
            path,
            db.templates[template.lower()],
            guid,
            webid.full(webid.EVENT_FRAME, [self.server.id, guid], path),
            start,
            end,
            severity,
            refs,
            ordinal,
        )

    def frames_overlapping(
        self, db: Database, start_us: int, end_us: int, now_us: int
    ) -> Iterator[EventFrame]:
        """Top-level frames that started by now and could overlap [start_us, end_us] (callers filter exactly)."""
        first = day_of(start_us - MAX_EF_DURATION_US)
        last = day_of(min(end_us, now_us))
        for day in range(first, last + 1):
            for ef in self.frames_for_day(db, day):
                if ef.start_us <= now_us:
                    yield ef

    def frames_walk(self, db: Database, from_us: int, now_us: int, *, forward: bool) -> Iterator[EventFrame]:
        """Top-level frames that started by now, day by day from from_us (including frames that began up to
        MAX_EF_DURATION_US earlier), forward in time up to now, or backward until the first generated day."""
        if forward:
            for day in range(day_of(from_us - MAX_EF_DURATION_US), day_of(now_us) + 1):
                for ef in self.frames_for_day(db, day):
                    if ef.start_us <= now_us:
                        yield ef
        else:
            day = day_of(min(from_us + MAX_EF_DURATION_US, now_us))
            # Generated history is unbounded backwards; stop a year before now (documented limit for Backward*).
            floor = day_of(now_us) - 366
            while day >= floor:
                for ef in reversed(self.frames_for_day(db, day)):
                    if ef.start_us <= now_us:
                        yield ef
                day -= 1


# ------------------------------------------------------------------------------------------------ module helpers


def _count_pi(spec: AttrSpec) -> int:
    return (1 if spec.pi_point in ("numeric", "digital") else 0) + sum(_count_pi(c) for c in spec.children)


def _point_pools(catalog: Catalog) -> dict[str, list[int]]:
    """Catalog point indices per family code, plus "" = every numeric point, in catalog order.

    Reads the catalog's vectorised family codes when present (100k tags in milliseconds); the hand-written points
    at the start carry their own family, so they are asked one by one.
    """
    from mock_pi.catalog import FAMILIES, SPECIAL_POINTS

    n = len(catalog)
    family_vec = getattr(catalog, "_family", None)
    codes: list[str]
    if family_vec is not None and len(family_vec) == n:
        names = np.array([f.code for f in FAMILIES], dtype=object)
        codes = list(names[np.asarray(family_vec, dtype=np.int64)])
        for i in range(min(n, len(SPECIAL_POINTS))):
            codes[i] = catalog.point_at(i).family
    else:
        codes = [catalog.point_at(i).family for i in range(n)]
    numeric_codes = {f.code for f in FAMILIES if f.point_type.startswith(("Float", "Int"))}
    pools: dict[str, list[int]] = {"": []}
    for i, code in enumerate(codes):
        pools.setdefault(code, []).append(i)
        if code in numeric_codes:
            pools[""].append(i)
    return pools


def _static_value(spec: AttrSpec, rng: random.Random, owner: Element | EventFrame) -> Any:
    kind, _, arg = spec.value.partition(":")
    if kind == "choice":
        return rng.choice(arg.split("|"))
    if kind == "range":
        lo, hi = (float(x) for x in arg.split(":"))
        return round(lo + rng.random() * (hi - lo), 3)
    if kind == "int":
        lo_i, hi_i = (int(x) for x in arg.split(":"))
        return rng.randint(lo_i, hi_i)
    if kind == "date":
        # Between 2005 and 2020, at midnight UTC.
        return (12_784 + rng.randrange(5_478)) * US_PER_DAY
    if kind == "bool":
        return rng.random() < float(arg)
    if kind == "serial":
        return f"{spec.name[:2].upper()}-{rng.randrange(10**6):06d}"
    if kind == "name":
        return owner.name
    if kind == "phase":
        return owner.ordinal if isinstance(owner, EventFrame) else 0
    if kind == "enum":
        code = rng.randrange(len(spec.enum))
        return (spec.enum[code], code + 1)
    return ""
