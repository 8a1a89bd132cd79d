"""Deterministic PI archive: values are a pure function of (seed, point, time), plus an in-memory edit overlay.

Each point's time axis is cut into slots (`Point.slot_us`), so any window can be computed on its own. An irregular
point's slot is its mean spacing and holds 0, 1 or (rarely) 2 events at hash-derived offsets. A point on a scan class
has events only at scan instants (a grid aligned to the hour): mock_pi/scans.py decides which scans are archived.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mock_pi.catalog import NO_DATA, PT_CREATED, SYSTEM_STATES, Point, splitmix64, unit_float
from mock_pi.pitime import format_us
from mock_pi.scans import ScanPlan, scan_plan

_U = np.uint64
_STRING_WORDS = ("BATCH", "LOT", "RUN", "CIP", "GRADE")
_SYSTEM_CODES = np.array([246, 246, 254, 255, 252, 251, 238, 248], dtype=np.int32)
_CHUNK_SLOTS = 1 << 20
# First chunk for a bounded read: ~limit × 1.25 slots (18 % of slots are empty), at least this many. Snapshot and
# interpolation lookups ask for one value, so a small floor keeps them at ~100 slots instead of ~1,000 (the chunk
# doubles when a sparse stretch holds too few events, so any limit is still met).
_MIN_CHUNK_SLOTS = 1 << 6
# Slots generated per numpy pass when many streams are read at once (bounds memory; large passes amortise calls).
_BULK_SLOTS = 1 << 18
# A stream with more slots than this gets its own pass: per-point scalars make numpy faster than per-slot arrays.
_OWN_PASS_SLOTS = 1 << 12


@dataclass
class Values:
    """Archive events in archive order (duplicate timestamps adjacent), one numpy array per field."""

    ts_us: np.ndarray  # int64 UTC microseconds
    value: np.ndarray  # float64; NaN for system states and non-numeric points
    text: np.ndarray | None  # object strings for String/Timestamp points, else None
    digital_code: np.ndarray  # int32 state code (digital or system), -1 if none
    is_system: np.ndarray
    good: np.ndarray
    questionable: np.ndarray
    substituted: np.ndarray
    annotated: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_us)

    @staticmethod
    def empty(with_text: bool = False) -> Values:
        b = np.zeros(0, dtype=bool)
        return Values(
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, dtype=object) if with_text else None,
            np.zeros(0, np.int32),
            b,
            b.copy(),
            b.copy(),
            b.copy(),
            b.copy(),
        )

    def take(self, index: np.ndarray | slice) -> Values:
        return Values(
            self.ts_us[index],
            self.value[index],
            None if self.text is None else self.text[index],
            self.digital_code[index],
            self.is_system[index],
            self.good[index],
            self.questionable[index],
            self.substituted[index],
            self.annotated[index],
        )

    @staticmethod
    def concat(parts: list[Values]) -> Values:
        parts = [p for p in parts if len(p)] or parts[:1]
        if len(parts) == 1:
            return parts[0]
        with_text = any(p.text is not None for p in parts)
        texts = None
        if with_text:
            texts = np.concatenate(
                [p.text if p.text is not None else np.full(len(p), None, dtype=object) for p in parts]
            )
        return Values(
            np.concatenate([p.ts_us for p in parts]),
            np.concatenate([p.value for p in parts]),
            texts,
            np.concatenate([p.digital_code for p in parts]),
            np.concatenate([p.is_system for p in parts]),
            np.concatenate([p.good for p in parts]),
            np.concatenate([p.questionable for p in parts]),
            np.concatenate([p.substituted for p in parts]),
            np.concatenate([p.annotated for p in parts]),
        )

    def reversed(self) -> Values:
        return self.take(slice(None, None, -1))


@dataclass(frozen=True)
class Event:
    """One edited event (written through POST /streams or the admin API)."""

    value: float = float("nan")
    text: str | None = None
    digital_code: int = -1
    is_system: bool = False
    good: bool = True
    questionable: bool = False
    substituted: bool = False
    annotated: bool = False


def system_event(code: int) -> Event:
    return Event(digital_code=code, is_system=True, good=False)


# Rounding of generated numeric values: decimals for floats, integers (with Int16 clipping) for the rest.
_ROUNDING = {"Float32": 1, "Int32": 2, "Int16": 3}  # 0: six decimals (Float64, Float16)


def slot_events(
    k: np.ndarray,
    key: int | np.ndarray,
    spacing_us: int | np.ndarray,
    quantum: int | np.ndarray,
    created_us: int | np.ndarray,
    duplicates: bool | np.ndarray,
    scan: ScanPlan | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events of slots `k`: (timestamps, per-event hash, index into k of each event's slot).

    The parameters are one point's (scalars) or per slot (arrays aligned with k), so one call can generate the
    slots of many points; either way an event is a pure function of (point, slot). Slot 0 holds only the
    "Pt Created" event at the creation instant. A `scan` plan (mock_pi/scans.py) sets the events of scanned
    points' slots.
    """
    shape = k.shape
    key, d, quantum, created, dup = (
        np.broadcast_to(np.asarray(x), shape) for x in (key, spacing_us, quantum, created_us, duplicates)
    )
    half = d // 2
    h1 = splitmix64(k.astype(_U) * _U(0xD1B54A32D192ED03) ^ key.astype(_U))
    u = unit_float(h1)
    count = np.where(u < 0.18, 0, np.where(u < 0.98, 1, 2)).astype(np.int64)
    if scan is not None:
        count = np.where(scan.count >= 0, scan.count, count)
    count[k == 0] = 1
    n = int(count.sum())
    slot_of = np.repeat(np.arange(len(k)), count)
    first = np.cumsum(count) - count
    pos = np.arange(n) - first[slot_of]
    h2 = splitmix64(h1 ^ _U(0x2545F4914F6CDD1D))
    h3 = splitmix64(h1 ^ _U(0x9FB21C651E98DF25))
    single = (h2 % d.astype(_U)).astype(np.int64)
    single -= single % quantum
    o1 = (h2 % half.astype(_U)).astype(np.int64)
    o1 -= o1 % quantum
    o2 = (h3 % half.astype(_U)).astype(np.int64)
    o2 = half + o2 - o2 % quantum
    dup_slot = ((h3 >> _U(62)) == _U(0)) & dup
    so = slot_of
    c = count[so]
    offset = np.where(
        c == 1, single[so], np.where(dup_slot[so], single[so], np.where(pos == 0, o1[so], o2[so]))
    )
    if scan is not None:
        offset[(scan.count >= 0)[so]] = scan.offset
    ks = k[so]
    ts = created[so] + ks * d[so] + np.where(ks == 0, 0, offset)
    he = splitmix64(h1[so] ^ (pos.astype(_U) + _U(1)) * _U(0xC2B2AE3D27D4EB4F))
    return ts, he, slot_of


def numeric_values(
    ts: np.ndarray,
    he: np.ndarray,
    zero: float | np.ndarray,
    span: float | np.ndarray,
    period_us: int | np.ndarray,
    phase: float | np.ndarray,
    rounding: int | np.ndarray,
) -> np.ndarray:
    """Values of numeric points: two sines and noise; parameters per point (scalars) or per event (arrays)."""
    t = ts.astype(np.float64)
    frac = (
        0.5
        + 0.3 * np.sin(2 * np.pi * t / period_us + phase)
        + 0.08 * np.sin(2 * np.pi * t / (period_us * 0.137) + 1.3 * phase)
        + 0.08 * (unit_float(he) - 0.5)
    )
    raw = zero + span * frac
    if isinstance(rounding, int):
        if rounding >= 2:
            whole = np.round(raw)
            return np.clip(whole, -32768, 32767) if rounding == 3 else whole
        return np.round(raw, 4 if rounding == 1 else 6)
    whole = np.round(raw)
    return np.select(
        [rounding == 0, rounding == 1, rounding == 2],
        [np.round(raw, 6), np.round(raw, 4), whole],
        np.clip(whole, -32768, 32767),
    )


def with_flags(
    ts: np.ndarray,
    he: np.ndarray,
    value: np.ndarray,
    text: np.ndarray | None,
    code: np.ndarray,
    system_rate: float | np.ndarray,
    created: np.ndarray,
) -> Values:
    """Values with system states (at `system_rate`), the "Pt Created" event where `created`, and quality flags."""
    is_system = ((he >> _U(24)) % _U(1_000_000)).astype(np.float64) < np.multiply(system_rate, 1_000_000)
    if is_system.any():
        pick = ((he[is_system] >> _U(44)) % _U(len(_SYSTEM_CODES))).astype(np.int64)
        code = code.copy()
        code[is_system] = _SYSTEM_CODES[pick]
        value = value.copy()
        value[is_system] = np.nan
    if created.any():
        is_system = is_system | created
        code = np.where(created, PT_CREATED, code).astype(np.int32)
        value = np.where(created, np.nan, value)
    if text is not None and is_system.any():
        text[is_system] = None
    questionable = ((he >> _U(34)) % _U(1000)) < _U(5)
    substituted = ((he >> _U(46)) % _U(1000)) < _U(2)
    annotated = ((he >> _U(54)) % _U(1000)) < _U(1)
    return Values(ts, value, text, code, is_system, ~is_system, questionable, substituted, annotated)


def generate(points: Sequence[Point], k0: np.ndarray, k1: np.ndarray) -> tuple[Values, np.ndarray]:
    """Generated events of slots [k0[i], k1[i]) of points[i], all in one numpy pass: (values, stream of each
    event). Events are a pure function of (point, slot), so any split of the slots gives the same events."""
    n_slots = np.maximum(k1 - k0, 0)
    stream = np.repeat(np.arange(len(points)), n_slots)
    k = np.arange(len(stream), dtype=np.int64) - np.repeat(np.cumsum(n_slots) - n_slots, n_slots) + k0[stream]
    one = len(points) == 1

    def param(attr: str, dtype: type, where: np.ndarray) -> Any:
        if one:
            return getattr(points[0], attr)
        return np.array([getattr(pt, attr) for pt in points], dtype=dtype)[where]

    plan = scan_plan(points, k0, n_slots)
    if plan is not None:
        live = plan.count != 0  # drop scan slots that archive nothing before hashing them
        k, stream, plan.count = k[live], stream[live], plan.count[live]
    spacing = param("slot_us", np.int64, stream)
    ts, he, slot_of = slot_events(
        k,
        param("key", np.uint64, stream),
        spacing,
        # Timestamps are whole milliseconds for sub-minute spacings, whole seconds otherwise.
        np.where(spacing < 60_000_000, 1_000, 1_000_000),
        param("created_us", np.int64, stream),
        param("duplicates", bool, stream),
        plan,
    )
    ev = stream[slot_of]
    n = len(ts)
    value = np.full(n, np.nan)
    code = np.full(n, -1, dtype=np.int32)
    kinds = [_kind(pt) for pt in points]
    with_text = any(kd in ("String", "Timestamp") for kd in kinds)
    text = np.full(n, None, dtype=object) if with_text else None
    for kind in set(kinds):
        if one:
            m: Any = slice(None)
            sub = None
        else:
            m = np.flatnonzero(np.array([kd == kind for kd in kinds])[ev])
            sub = ev[m]
        if kind == "numeric":
            value[m] = numeric_values(
                ts[m],
                he[m],
                *(param(a, np.float64, sub) for a in ("zero", "span", "period_us", "phase")),
                _ROUNDING.get(points[0].point_type, 0)
                if one
                else np.array([_ROUNDING.get(pt.point_type, 0) for pt in points], dtype=np.int64)[sub],
            )
        elif kind == "Digital":
            sets = [pt.digital_set.states if pt.digital_set else ((("", -1),)) for pt in points]
            width = max(len(st) for st in sets)
            table = np.array([[c for _, c in st] + [-1] * (width - len(st)) for st in sets], dtype=np.int32)
            sizes = np.array([len(st) for st in sets], dtype=np.uint64)
            row = np.zeros(len(ts[m]), dtype=np.int64) if one else sub
            code[m] = table[row, ((he[m] >> _U(7)) % sizes[row]).astype(np.int64)]
            value[m] = code[m]
        elif kind == "String" and text is not None:
            h = he[m]
            words = np.array(_STRING_WORDS, dtype=object)[
                ((h >> _U(5)) % _U(len(_STRING_WORDS))).astype(np.int64)
            ]
            num = ((h >> _U(17)) % _U(100000)).astype(np.int64)
            text[m] = [f"{a}-{b:05d}" for a, b in zip(words.tolist(), num.tolist(), strict=True)]
        elif kind == "Timestamp" and text is not None:
            back = ((he[m] >> _U(5)) % _U(30 * 86400)).astype(np.int64) * 1_000_000
            text[m] = [format_us(int(x)) for x in (ts[m] - back).tolist()]
    vals = with_flags(ts, he, value, text, code, param("system_rate", np.float64, ev), k[slot_of] == 0)
    return vals, ev


def _kind(point: Point) -> str:
    if point.is_numeric:
        return "numeric"
    if point.point_type == "Digital" and point.digital_set is not None:
        return "Digital"
    return point.point_type if point.point_type in ("String", "Timestamp") else "none"


class Archive:
    """Answers recorded/snapshot queries for catalog points; edits overlay the generated data per timestamp."""

    def __init__(self, seed: int, now_us: Callable[[], int]) -> None:
        self.seed = seed
        self._now_us = now_us
        self._lock = threading.Lock()
        # point index → {timestamp → events replacing every generated event at that timestamp}
        self._overrides: dict[int, dict[int, list[Event]]] = {}
        self._override_keys: dict[int, list[int]] = {}

    # --- generation --------------------------------------------------------------------------------------------

    def _generate(self, point: Point, k0: int, k1: int) -> Values:
        """Generated events of slots [k0, k1) (k >= 0), before edits and before the `now` cut."""
        return generate([point], np.array([k0], dtype=np.int64), np.array([k1], dtype=np.int64))[0]

    # --- edits ---------------------------------------------------------------------------------------------------

    def _events_at(self, point: Point, ts_us: int) -> list[Event]:
        """Current events stored at exactly ts_us (edits applied), in archive order."""
        overrides = self._overrides.get(point.index, {})
        if ts_us in overrides:
            return list(overrides[ts_us])
        vals = self._window(point, ts_us, ts_us, apply_edits=False)
        return [_to_event(vals, i) for i in range(len(vals))]

    def _set(self, point: Point, ts_us: int, events: list[Event]) -> None:
        table = self._overrides.setdefault(point.index, {})
        keys = self._override_keys.setdefault(point.index, [])
        if ts_us not in table:
            bisect.insort(keys, ts_us)
        table[ts_us] = events

    def insert(self, point: Point, ts_us: int, event: Event) -> None:
        """Add an event beside any existing ones at ts_us (a late, backdated write as a PI buffer makes it)."""
        with self._lock:
            self._set(point, ts_us, [*self._events_at(point, ts_us), event])

    def replace(self, point: Point, ts_us: int, event: Event) -> None:
        """Replace the first event at ts_us (or add one when none exists), as PI's updateOption=Replace does."""
        with self._lock:
            events = self._events_at(point, ts_us)
            self._set(point, ts_us, [event, *events[1:]] if events else [event])

    def no_replace(self, point: Point, ts_us: int, event: Event) -> bool:
        """Add only when nothing is stored at ts_us; True if added."""
        with self._lock:
            if self._events_at(point, ts_us):
                return False
            self._set(point, ts_us, [event])
            return True

    def delete(self, point: Point, ts_us: int) -> int:
        """Remove every event at ts_us; returns how many were removed."""
        with self._lock:
            removed = len(self._events_at(point, ts_us))
            self._set(point, ts_us, [])
            return removed

    def edit_count(self, point: Point) -> int:
        return len(self._override_keys.get(point.index, []))

    # --- queries -------------------------------------------------------------------------------------------------

    def now_us(self) -> int:
        return int(self._now_us())

    def _window(self, point: Point, start_us: int, end_us: int, apply_edits: bool = True) -> Values:
        """All events with start <= ts <= end (no `now` cut); caller keeps the slot range small."""
        d = point.slot_us
        k0 = max(0, (start_us - point.created_us) // d)
        k1 = max(0, (end_us - point.created_us) // d + 1)
        vals = self._generate(point, k0, k1)
        if len(vals):
            # Counting instead of np.searchsorted: searchsorted always releases the GIL, and with the server's
            # handler threads busy, getting it back costs up to a 5 ms switch interval per call (it dominated
            # profiles of stream-set calls over thousands of streams). ts_us is sorted, so the counts are the
            # same insertion points.
            ts = vals.ts_us
            lo, hi = int(np.count_nonzero(ts < start_us)), int(np.count_nonzero(ts <= end_us))
            vals = vals.take(slice(lo, hi))
        if apply_edits:
            vals = self._apply_edits(point, vals, start_us, end_us)
        return vals

    def _apply_edits(self, point: Point, vals: Values, start_us: int, end_us: int) -> Values:
        keys = self._override_keys.get(point.index)
        if not keys:
            return vals
        lo = bisect.bisect_left(keys, start_us)
        hi = bisect.bisect_right(keys, end_us)
        if lo == hi:
            return vals
        edited = keys[lo:hi]
        table = self._overrides[point.index]
        keep = ~np.isin(vals.ts_us, np.asarray(edited, dtype=np.int64))
        ts: list[int] = []
        events: list[Event] = []
        for t in edited:
            for ev in table[t]:
                ts.append(t)
                events.append(ev)
        extra = from_events(point, ts, events)
        merged = Values.concat([vals.take(keep), extra])
        order = np.argsort(merged.ts_us, kind="stable")
        return merged.take(order)

    def recorded(
        self,
        point: Point,
        start_us: int,
        end_us: int,
        limit: int | None = None,
        descending: bool = False,
        now_us: int | None = None,
    ) -> Values:
        """Events with start <= ts <= min(end, now), edits applied; the first `limit` in the chosen direction.

        Values come back in ascending order unless `descending`. Work is bounded by `limit`: slots are generated in
        chunks from the requested end, so a year of a 0.5 s tag costs only what is returned.
        """
        now = self.now_us() if now_us is None else now_us
        end_us = min(end_us, now)
        start_us = max(start_us, point.created_us)
        if end_us < start_us or (limit is not None and limit <= 0):
            return Values.empty(point.point_type in ("String", "Timestamp"))
        d = point.slot_us
        k_first = (start_us - point.created_us) // d
        k_last = (end_us - point.created_us) // d
        chunk = (
            _CHUNK_SLOTS
            if limit is None
            else max(_MIN_CHUNK_SLOTS, min(_CHUNK_SLOTS, _slots_for(point, limit)))
        )
        parts: list[Values] = []
        got = 0
        if not descending:
            k = k_first
            while k <= k_last:
                kb = min(k_last + 1, k + chunk)
                lo_t = max(start_us, point.created_us + k * d)
                hi_t = min(end_us, point.created_us + kb * d - 1)
                part = self._window(point, lo_t, hi_t)
                parts.append(part)
                got += len(part)
                if limit is not None and got >= limit:
                    break
                k = kb
                chunk = min(_CHUNK_SLOTS, chunk * 2)
            vals = Values.concat(parts) if parts else Values.empty()
            return vals.take(slice(0, limit)) if limit is not None else vals
        k = k_last + 1
        while k > k_first:
            ka = max(k_first, k - chunk)
            lo_t = max(start_us, point.created_us + ka * d)
            hi_t = min(end_us, point.created_us + k * d - 1)
            part = self._window(point, lo_t, hi_t)
            parts.append(part.reversed())
            got += len(part)
            if limit is not None and got >= limit:
                break
            k = ka
            chunk = min(_CHUNK_SLOTS, chunk * 2)
        vals = Values.concat(parts) if parts else Values.empty()
        return vals.take(slice(0, limit)) if limit is not None else vals

    def recorded_many(
        self, requests: Sequence[tuple[Point, int, int, int]], stop_after: int | None = None
    ) -> tuple[Values, np.ndarray]:
        """`recorded(point, start, end, limit)` for many streams at once: (values of all streams in request order,
        offsets) where stream i is values[offsets[i]:offsets[i + 1]]; the same values as one call per stream.

        Streams without edits are generated together, a few hundred thousand slots per numpy pass, so a
        stream-set call costs per value rather than per stream. Long reads (their own pass is as cheap), streams
        with edits, and streams whose first chunk of slots holds too few events take the one-stream path. Stops after the batch in which the running total of
        values passes `stop_after` (the caller's per-call limit), so an oversized request costs little.
        """
        now = self.now_us()
        parts: list[Values] = []
        total = 0
        batch: list[tuple[int, Point, int, int, int, int, int]] = []
        slots = 0
        i = 0
        while i < len(requests) and (stop_after is None or total <= stop_after):
            point, start_us, end_us, limit = requests[i]
            end_us = min(end_us, now)
            start_us = max(start_us, point.created_us)
            d = point.slot_us
            k_first = (start_us - point.created_us) // d
            k_end = min(
                (end_us - point.created_us) // d + 1,
                k_first + max(_MIN_CHUNK_SLOTS, _slots_for(point, limit)),
            )
            if end_us < start_us or limit <= 0 or k_end - k_first > _OWN_PASS_SLOTS or self.edit_count(point):
                parts.append(self.recorded(point, start_us, end_us, limit, now_us=now))
                total += len(parts[-1])
            else:
                batch.append((len(parts), point, start_us, end_us, limit, k_first, k_end))
                parts.append(Values.empty())
                slots += k_end - k_first
            i += 1
            if batch and (
                slots >= _BULK_SLOTS or i == len(requests) or not (stop_after is None or total <= stop_after)
            ):
                total += self._fill_batch(batch, parts, now)
                batch, slots = [], 0
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return Values.concat(parts) if parts else Values.empty(), offsets

    def _fill_batch(
        self, batch: list[tuple[int, Point, int, int, int, int, int]], parts: list[Values], now: int
    ) -> int:
        """Generate the slots of a batch of streams in one pass; put each stream's values in `parts`."""
        points = [b[1] for b in batch]
        vals, ev = generate(
            points,
            np.array([b[5] for b in batch], dtype=np.int64),
            np.array([b[6] for b in batch], dtype=np.int64),
        )
        ts = vals.ts_us
        # Cut to [start, end], then keep each stream's first `limit` events.
        start = np.array([b[2] for b in batch], dtype=np.int64)
        end = np.array([b[3] for b in batch], dtype=np.int64)
        limit = np.array([b[4] for b in batch], dtype=np.int64)
        inside = (ts >= start[ev]) & (ts <= end[ev])
        ev_in = ev[inside]
        counts = np.bincount(ev_in, minlength=len(batch))
        first = np.cumsum(counts) - counts
        rank = np.arange(len(ev_in)) - first[ev_in]
        keep = np.flatnonzero(inside)[rank < limit[ev_in]]
        vals = vals.take(keep)
        kept = np.minimum(counts, limit)
        bounds = np.concatenate([[0], np.cumsum(kept)]).tolist()
        total = 0
        for j, (slot, point, start_us, end_us, lim, _, k_end) in enumerate(batch):
            k_last = (end_us - point.created_us) // point.slot_us
            if counts[j] < lim and k_end <= k_last:
                part = self.recorded(point, start_us, end_us, lim, now_us=now)  # the first chunk held too few
            else:
                part = vals.take(slice(bounds[j], bounds[j + 1]))
            parts[slot] = part
            total += len(part)
        return total

    def snapshot(self, point: Point, at_us: int | None = None) -> Values:
        """The last event at or before at_us (default now), or no event before the point existed."""
        now = self.now_us()
        at = now if at_us is None else min(at_us, now)
        return self.recorded(point, point.created_us, at, limit=1, descending=True, now_us=now)

    def before(self, point: Point, at_us: int, inclusive: bool = True) -> Values:
        return self.snapshot(point, at_us if inclusive else at_us - 1)

    def after(self, point: Point, at_us: int, inclusive: bool = True) -> Values:
        return self.recorded(point, at_us if inclusive else at_us + 1, self.now_us(), limit=1)

    def count(self, point: Point, start_us: int, end_us: int, cap: int) -> int:
        """Number of events in [start, end], counting at most `cap` (bounded work for limit checks)."""
        return len(self.recorded(point, start_us, end_us, limit=cap))

    # --- interpolation -------------------------------------------------------------------------------------------

    def interpolate(self, point: Point, times_us: Iterable[int]) -> Values:
        """PI-style interpolated values at the given times (ascending): linear for numeric non-step points,
        the previous value otherwise; "No Data" before creation or in the future."""
        times = np.asarray(list(times_us), dtype=np.int64)
        now = self.now_us()
        n = len(times)
        if n == 0:
            return Values.empty(point.point_type in ("String", "Timestamp"))
        lo, hi = int(times.min()), int(times.max())
        expected = (min(hi, now) - max(lo, point.created_us)) / point.spacing_us
        if expected <= 8 * n + 4096:
            data = self._around(point, lo, hi, now)
            # The "next" event is the first one strictly after t; the previous one is just before it.
            idx_next = _right_of(data.ts_us, times)
            idx_prev = idx_next - 1
            has_next = idx_next < len(data)
            return self._interp_from(point, data, times, idx_prev, idx_next, has_next, now)
        parts = []
        for t in times.tolist():
            prev = self.before(point, t)
            nxt = self.after(point, t, inclusive=False) if t < now else Values.empty()
            data = Values.concat([prev, nxt])
            one = np.array([t], dtype=np.int64)
            ip = np.array([len(prev) - 1])
            inx = np.array([len(prev)])
            parts.append(self._interp_from(point, data, one, ip, inx, inx < len(data), now))
        return Values.concat(parts)

    def _around(self, point: Point, lo: int, hi: int, now: int) -> Values:
        """The events interpolation at times in [lo, hi] needs: the last one before lo, all in [lo, hi], the first
        after hi (none after `now`). One generated window of a few slots either side usually holds them all."""
        margin = _MIN_CHUNK_SLOTS // 2 * point.spacing_us
        near = self._window(point, max(point.created_us, lo - margin), min(now, hi + margin))
        before_lo = int(np.count_nonzero(near.ts_us < lo))
        after_hi = int(np.count_nonzero(near.ts_us > hi))
        if (before_lo or lo <= point.created_us) and (after_hi or hi + margin >= now):
            first = max(before_lo - 1, 0)
            return near.take(slice(first, len(near) - max(after_hi - 1, 0)))
        inner = self.recorded(point, lo, hi, now_us=now)
        prev0 = self.before(point, lo - 1) if lo > point.created_us else Values.empty()
        nxt = self.after(point, hi, inclusive=False) if hi < now else Values.empty()
        return Values.concat([prev0, inner, nxt])

    def _interp_from(
        self,
        point: Point,
        data: Values,
        times: np.ndarray,
        idx_prev: np.ndarray,
        idx_next: np.ndarray,
        has_next: np.ndarray,
        now: int,
    ) -> Values:
        n = len(times)
        valid = (idx_prev >= 0) & (times >= point.created_us) & (times <= now)
        ip = np.clip(idx_prev, 0, max(len(data) - 1, 0))
        inx = np.clip(idx_next, 0, max(len(data) - 1, 0))
        if len(data) == 0:
            out = from_events(point, times.tolist(), [system_event(NO_DATA)] * n)
            return out
        out = data.take(ip)
        out = Values(
            times.copy(),
            out.value.copy(),
            None if out.text is None else out.text.copy(),
            out.digital_code.copy(),
            out.is_system.copy(),
            out.good.copy(),
            out.questionable.copy(),
            out.substituted.copy(),
            np.zeros(n, dtype=bool),
        )
        if point.is_numeric and not point.step:
            nxt_ok = has_next & valid & ~data.is_system[inx] & ~data.is_system[ip]
            t0 = data.ts_us[ip].astype(np.float64)
            t1 = data.ts_us[inx].astype(np.float64)
            span = np.where(t1 > t0, t1 - t0, 1.0)
            w = np.clip((times - t0) / span, 0.0, 1.0)
            lin = data.value[ip] + (data.value[inx] - data.value[ip]) * w
            out.value = np.where(nxt_ok, lin, out.value)
            out.questionable = out.questionable | (nxt_ok & data.questionable[inx])
        if not valid.all():
            bad = ~valid
            out.value[bad] = np.nan
            out.digital_code[bad] = NO_DATA
            out.is_system[bad] = True
            out.good[bad] = False
            out.questionable[bad] = False
            out.substituted[bad] = False
            if out.text is not None:
                out.text[bad] = None
        return out


def _slots_for(point: Point, limit: int) -> int:
    """Slots that likely hold `limit` events: a quarter more than the mean, and a margin."""
    return int(limit * 1.25 / point.events_per_slot) + 64


def _right_of(sorted_ts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """np.searchsorted(sorted_ts, times, side="right"), without releasing the GIL for a few times (see _window)."""
    if len(times) > 16:
        return np.searchsorted(sorted_ts, times, side="right")
    return np.array([int(np.count_nonzero(sorted_ts <= t)) for t in times.tolist()], dtype=np.int64)


def _to_event(vals: Values, i: int) -> Event:
    return Event(
        value=float(vals.value[i]),
        text=None if vals.text is None else vals.text[i],
        digital_code=int(vals.digital_code[i]),
        is_system=bool(vals.is_system[i]),
        good=bool(vals.good[i]),
        questionable=bool(vals.questionable[i]),
        substituted=bool(vals.substituted[i]),
        annotated=bool(vals.annotated[i]),
    )


def from_events(point: Point, ts: list[int], events: list[Event]) -> Values:
    with_text = point.point_type in ("String", "Timestamp")
    return Values(
        np.asarray(ts, dtype=np.int64),
        np.asarray([e.value for e in events], dtype=np.float64),
        np.asarray([e.text for e in events], dtype=object) if with_text else None,
        np.asarray([e.digital_code for e in events], dtype=np.int32),
        np.asarray([e.is_system for e in events], dtype=bool),
        np.asarray([e.good for e in events], dtype=bool),
        np.asarray([e.questionable for e in events], dtype=bool),
        np.asarray([e.substituted for e in events], dtype=bool),
        np.asarray([e.annotated for e in events], dtype=bool),
    )


def system_state_name(code: int) -> str:
    return SYSTEM_STATES.get(code, f"State {code}")
