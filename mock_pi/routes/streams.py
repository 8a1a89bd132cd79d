"""Stream controller: recorded, interpolated, plot, summary, value, end, recordedattime, and value writes.

Also the time-series engine shared with stream sets (time parameters, boundary types, limits, summaries); a stream
WebId is a PI point or an AF attribute with a PI Point data reference.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.archive import Archive, Event, Values, from_events, system_event
from mock_pi.catalog import CALC_FAILED, NO_DATA, SYSTEM_STATES, Point
from mock_pi.http import JSON_TYPE, PIHTTPError, Query, base_url, json_response
from mock_pi.metrics import count_values
from mock_pi.pitime import format_us, parse_interval, parse_time
from mock_pi.serialize import FieldSelector, timed_value_fragments, timed_values_text
from mock_pi.state import EmulatorState, StreamSource

DEFAULT_START = "*-1d"
DEFAULT_END = "*"
SUMMARY_TYPES = (
    "Total",
    "Average",
    "Minimum",
    "Maximum",
    "Range",
    "StdDev",
    "PopulationStdDev",
    "Count",
    "PercentGood",
)
NON_NUMERIC_SUMMARIES = ("Count", "PercentGood")
_UNIT_RATES_US = {
    "/s": 1_000_000,
    "/sec": 1_000_000,
    "/min": 60_000_000,
    "/h": 3_600_000_000,
    "/d": 86_400_000_000,
}
DAY_US = 86_400_000_000
EVENT_BASES = (
    "eventweighted",
    "eventweightedexcludemostrecentevent",
    "eventweightedexcludeearliestevent",
    "eventweightedincludebothends",
)
TIME_BASES = ("timeweighted", "timeweightedcontinuous", "timeweighteddiscrete")
TIME_TYPES = ("auto", "earliesttime", "mostrecenttime")
SAMPLE_TYPES = ("expressionrecordedvalues", "interval")
_WALL_CLOCK_UNITS = ("d", "day", "days", "w", "wk", "week", "weeks")
_CALENDAR_UNITS = ("mo", "month", "months", "y", "yr", "year", "years")


# --- parameters --------------------------------------------------------------------------------------------------


def state_of(request: Request) -> EmulatorState:
    return request.app.state.emulator


def resolve(state: EmulatorState, web_id: str) -> StreamSource:
    src = state.stream_source(web_id)
    if src is None:
        raise PIHTTPError(
            404, f"Unknown or invalid WebID '{web_id}': no PI point or PI Point attribute found."
        )
    return src


def time_param(q: Query, name: str, default: str, now_us: int) -> int:
    raw = q.get(name)
    text = default if raw is None or raw == "" else raw
    try:
        return parse_time(text, now_us, q.get("timeZone") or "UTC")
    except ValueError:
        raise PIHTTPError(
            400, f"The time string '{text}' given for '{name}' is not a valid PI time."
        ) from None


def time_range(q: Query, now_us: int, src: StreamSource | None = None) -> tuple[int, int]:
    """startTime/endTime with PI defaults ('*-1d', '*'); an event-frame attribute defaults to its frame's range."""
    if src is not None and src.default_range is not None:
        start = time_param(q, "startTime", "", now_us) if q.get("startTime") else src.default_range[0]
        end = time_param(q, "endTime", "", now_us) if q.get("endTime") else src.default_range[1]
        return start, end
    return time_param(q, "startTime", DEFAULT_START, now_us), time_param(q, "endTime", DEFAULT_END, now_us)


def interval_param(q: Query, name: str, default: str | None) -> int | None:
    raw = q.get(name) or default
    if raw is None:
        return None
    try:
        value = parse_interval(raw)
    except ValueError:
        raise PIHTTPError(400, f"The interval '{raw}' given for '{name}' is not a valid time span.") from None
    if value <= 0:
        raise PIHTTPError(400, f"The interval '{raw}' given for '{name}' must be positive.")
    return value


def reject_unsupported(q: Query) -> None:
    if q.get("filterExpression"):
        raise PIHTTPError(
            400, "filterExpression is not supported by this emulator; filter on the client side."
        )


def too_many(limit: int) -> PIHTTPError:
    return PIHTTPError(
        400,
        f"The number of items the request would return is greater than the maximum allowed ({limit}). "
        "Reduce the time range, maxCount or the number of streams.",
    )


# --- summary intervals -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """One summary interval in time order (lo <= hi) and whether events stamped exactly at lo / hi belong to it."""

    lo: int
    hi: int
    with_lo: bool = True
    with_hi: bool = True

    def mask(self, ts: np.ndarray) -> np.ndarray:
        """Which of the timestamps `ts` (all within [lo, hi]) the interval holds."""
        return ((ts > self.lo) | (self.with_lo & (ts == self.lo))) & (
            (ts < self.hi) | (self.with_hi & (ts == self.hi))
        )

    @staticmethod
    def mask_many(ts: np.ndarray, stream: np.ndarray, intervals: list[Interval]) -> np.ndarray:
        """`mask` for values of many streams at once: value i belongs to intervals[stream[i]]."""
        lo = np.array([iv.lo for iv in intervals], dtype=np.int64)[stream]
        hi = np.array([iv.hi for iv in intervals], dtype=np.int64)[stream]
        with_lo = np.array([iv.with_lo for iv in intervals], dtype=bool)[stream]
        with_hi = np.array([iv.with_hi for iv in intervals], dtype=bool)[stream]
        return ((ts > lo) | (with_lo & (ts == lo))) & ((ts < hi) | (with_hi & (ts == hi)))


def boundary_events(basis: str, several: bool, descending: bool) -> tuple[bool, bool]:
    """(events at the earlier boundary count, events at the later boundary count) for an event-weighted basis.

    EventWeighted (AVEVA, topics/calculation-basis.html; AF SDK AFCalculationBasis): one interval uses the events at
    both boundaries; several ascending intervals each include the events at their start time; several descending
    intervals each include the events at their end time. AVEVA names an interval's start time its *earliest* and its
    end time its *most recent* time (same topic, EventWeightedExcludeMostRecentEvent; topics/time-type.html), so a
    descending interval keeps its later boundary: each interval keeps the boundary its walk meets first. The three
    variants fix the ends whatever the layout: ExcludeMostRecentEvent [earlier, later), ExcludeEarliestEvent
    (earlier, later], IncludeBothEnds [earlier, later].
    """
    if basis == "eventweightedexcludemostrecentevent":
        return True, False
    if basis == "eventweightedexcludeearliestevent":
        return False, True
    if basis == "eventweighted" and several:
        return (False, True) if descending else (True, False)
    return True, True


def interval_count(start: int, end: int, duration: int | None) -> int:
    """How many intervals `summary_intervals` lays (without laying them)."""
    span = abs(end - start)
    return 1 if duration is None or abs(duration) >= span else -(-span // abs(duration))


def summary_intervals(start: int, end: int, duration: int | None, basis: str) -> list[Interval]:
    """The calculation intervals of a summary request, in request order (descending when end < start).

    No summaryDuration, or one at least as long as the range: one interval. A positive duration is laid from the
    earliest bound forwards, a negative one from the latest bound backwards; the last interval laid is cut at the
    other bound (AVEVA, topics/summary-duration.html: "the order of values returned will still be reflected by the
    timeRange, regardless of the summary duration sign").
    """
    descending = end < start
    lo, hi = (end, start) if descending else (start, end)
    if duration is None or abs(duration) >= hi - lo:
        edges = [lo, hi]
    elif duration > 0:
        edges = [*range(lo, hi, duration), hi]
    else:
        edges = [lo, *reversed(range(hi, lo, duration))]
    pairs = list(itertools.pairwise(edges))
    if descending:
        pairs.reverse()
    with_lo, with_hi = boundary_events(basis, len(pairs) > 1, descending)
    return [Interval(a, b, with_lo, with_hi) for a, b in pairs]


# --- engine ------------------------------------------------------------------------------------------------------


@dataclass
class Engine:
    state: EmulatorState

    @property
    def archive(self) -> Archive:
        return self.state.archive

    def recorded(self, point: Point, start: int, end: int, boundary: str, max_count: int) -> Values:
        """Recorded values in request order (descending when end < start), truncated to max_count."""
        desc = end < start
        lo, hi = (end, start) if desc else (start, end)
        b = boundary.lower()
        if b == "inside":
            return self.archive.recorded(point, lo, hi, limit=max_count, descending=desc)
        if b == "outside":
            inner = self.archive.recorded(point, lo, hi, limit=max_count, descending=desc)
            before = self.archive.before(point, lo, inclusive=False)
            after = self.archive.after(point, hi, inclusive=False)
            parts = [after, inner, before] if desc else [before, inner, after]
        elif b == "interpolated":
            edge = self.archive.interpolate(point, [lo, hi] if hi > lo else [lo])
            inner = (
                self.archive.recorded(point, lo + 1, hi - 1, limit=max_count, descending=desc)
                if hi - lo > 1
                else Values.empty(point.point_type in ("String", "Timestamp"))
            )
            first, last = edge.take(slice(0, 1)), edge.take(slice(1, 2))
            parts = [last, inner, first] if desc else [first, inner, last]
        else:
            raise PIHTTPError(
                400, f"The boundaryType '{boundary}' is not valid (use Inside, Outside or Interpolated)."
            )
        return Values.concat(parts).take(slice(0, max_count))

    def interpolated_times(self, start: int, end: int, interval: int, limit: int) -> list[int]:
        n = abs(end - start) // interval + 1
        if n > limit:
            raise too_many(limit)
        step = interval if end >= start else -interval
        return [start + i * step for i in range(n)]

    def interpolated(self, point: Point, times: list[int]) -> Values:
        asc = sorted(times)
        vals = self.archive.interpolate(point, asc)
        return vals if asc == times else vals.reversed()

    def plot(self, point: Point, start: int, end: int, intervals: int) -> Values:
        desc = end < start
        lo, hi = (end, start) if desc else (start, end)
        data = self.archive.recorded(point, lo, hi)
        edges = self.archive.interpolate(point, [lo, hi])
        chosen: set[int] = set()
        if len(data):
            bounds = np.linspace(lo, hi, intervals + 1)
            bucket = np.clip(np.searchsorted(bounds, data.ts_us, side="right") - 1, 0, intervals - 1)
            starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            stops = np.r_[starts[1:], len(data)]
            numeric = point.is_numeric
            for a, z in zip(starts.tolist(), stops.tolist(), strict=True):
                chosen.update((a, z - 1))
                bad = np.flatnonzero(data.is_system[a:z])
                if len(bad):
                    chosen.add(a + int(bad[0]))
                if numeric:
                    seg = np.where(data.is_system[a:z], np.nan, data.value[a:z])
                    if not np.isnan(seg).all():
                        chosen.update((a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))))
        picked = data.take(np.array(sorted(chosen), dtype=np.int64))
        parts = []
        if not len(picked) or picked.ts_us[0] != lo:
            parts.append(edges.take(slice(0, 1)))
        parts.append(picked)
        if hi != lo and (not len(picked) or picked.ts_us[-1] != hi):
            parts.append(edges.take(slice(1, 2)))
        vals = Values.concat(parts)
        return vals.reversed() if desc else vals

    def summary(
        self,
        src: StreamSource,
        start: int,
        end: int,
        types: list[str],
        basis: str,
        duration: int | None,
        time_type: str,
    ) -> list[dict[str, Any]]:
        """Summaries per type, each type's intervals in request order (see `summary_intervals`)."""
        point = src.point
        if not point.is_numeric:
            bad = [t for t in types if t not in NON_NUMERIC_SUMMARIES]
            if bad:
                raise PIHTTPError(
                    400,
                    f"Summary type(s) {', '.join(bad)} cannot be calculated for '{src.name}' "
                    f"(point type {point.point_type}); only Count and PercentGood apply to non-numeric streams.",
                )
        limit = self.state.config.max_returned_items
        if interval_count(start, end, duration) * len(types) > limit:
            raise too_many(limit)
        intervals = summary_intervals(start, end, duration, basis)
        results: dict[str, list[dict[str, Any]]] = {t: [] for t in types}
        for iv in intervals:
            stats = self._interval_stats(point, iv, basis)
            for t in types:
                results[t].append(self.summary_value(src, t, stats, iv.lo, iv.hi, time_type))
        return [{"Type": t, "Value": v} for t in types for v in results[t]]

    def counts(self, reads: list[tuple[Point, Interval]]) -> list[int]:
        """Good, non-system events per (point, interval), the interval's boundary events included as it says:
        `_interval_stats`' count (event-weighted bases) for many streams in one pass."""
        values, offsets = self.archive.recorded_many([(p, iv.lo, iv.hi, 1 << 62) for p, iv in reads])
        stream = np.repeat(np.arange(len(reads)), np.diff(offsets))
        ivs = [iv for _, iv in reads]
        inside = Interval.mask_many(values.ts_us, stream, ivs)
        good = values.good & ~values.is_system & inside
        return np.bincount(stream[good], minlength=len(reads)).tolist()

    def _interval_stats(self, point: Point, iv: Interval, basis: str) -> dict[str, Any]:
        s, e = iv.lo, iv.hi
        vals = self.archive.recorded(point, s, e)
        if basis in EVENT_BASES:
            return self._event_stats(point, vals.take(iv.mask(vals.ts_us)))
        stats: dict[str, Any] = {}
        if not point.is_numeric:
            good_us = self._time_good_us(point, s, e, vals)
            stats["percent_good"] = 100.0 * good_us / (e - s) if e > s else 0.0
            stats["count"] = good_us / 1e6
            return stats
        # Time-weighted: interpolated values at both ends, then the events strictly inside. The basis may override
        # the point's step attribute: Continuous interpolates linearly, Discrete holds the previous value.
        step = point.step if basis == "timeweighted" else basis == "timeweighteddiscrete"
        shape = point if step == point.step else dataclasses.replace(point, step=step)
        edge = self.archive.interpolate(shape, [s, e])
        inner = vals.take((vals.ts_us > s) & (vals.ts_us < e))
        seq = Values.concat([edge.take(slice(0, 1)), inner, edge.take(slice(1, 2))])
        t = seq.ts_us.astype(np.float64)
        v = seq.value
        ok = seq.good & ~seq.is_system
        dt = np.diff(t)
        seg_ok = ok[:-1]
        if step:
            area_seg = v[:-1] * dt
        else:
            nxt = np.where(ok[1:], v[1:], v[:-1])
            area_seg = (v[:-1] + nxt) / 2.0 * dt
        good_time = float(dt[seg_ok].sum())
        # A time-weighted Count is PI's "sum of event time duration": the seconds of good data in the interval.
        stats["count"] = good_time / 1e6
        stats["percent_good"] = 100.0 * good_time / (e - s) if e > s else (100.0 if ok.all() else 0.0)
        good_v = v[ok]
        if good_time > 0:
            area = float(np.where(seg_ok, area_seg, 0.0).sum())
            avg = area / good_time
            w = np.where(seg_ok, dt, 0.0)
            var = float((w * np.where(seg_ok, v[:-1] - avg, 0.0) ** 2).sum() / good_time)
            rate = next((r for suffix, r in _UNIT_RATES_US.items() if point.units.endswith(suffix)), DAY_US)
            stats.update(total=area / rate, average=avg, std=math.sqrt(var), pstd=math.sqrt(var))
        if len(good_v):
            ts_ok = seq.ts_us[ok]
            stats["min"] = (float(good_v.min()), int(ts_ok[int(good_v.argmin())]))
            stats["max"] = (float(good_v.max()), int(ts_ok[int(good_v.argmax())]))
        return stats

    @staticmethod
    def _event_stats(point: Point, in_range: Values) -> dict[str, Any]:
        """Event-weighted statistics of the events an interval holds (boundary events already chosen)."""
        good_events = in_range.good & ~in_range.is_system
        stats: dict[str, Any] = {"count": int(good_events.sum()), "events": len(in_range)}
        stats["percent_good"] = 100.0 * stats["count"] / stats["events"] if stats["events"] else 0.0
        if not point.is_numeric:
            return stats
        v = in_range.value[good_events]
        ts = in_range.ts_us[good_events]
        if len(v):
            stats.update(
                total=float(v.sum()),
                average=float(v.mean()),
                min=(float(v.min()), int(ts[int(v.argmin())])),
                max=(float(v.max()), int(ts[int(v.argmax())])),
            )
        if len(v) > 1:  # "Two events are required for standard deviation" (AVEVA, calculation basis)
            stats.update(std=float(v.std(ddof=1)), pstd=float(v.std(ddof=0)))
        return stats

    def _time_good_us(self, point: Point, s: int, e: int, vals: Values) -> float:
        """Microseconds of [s, e) covered by good values (each holds until the next event), for stepped streams."""
        edge = self.archive.interpolate(point, [s])
        inner = vals.take((vals.ts_us > s) & (vals.ts_us < e))
        seq = Values.concat([edge, inner])
        t = np.r_[seq.ts_us, e].astype(np.float64)
        ok = seq.good & ~seq.is_system
        return float(np.diff(t)[ok].sum()) if e > s else 0.0

    def summary_value(
        self, src: StreamSource, kind: str, stats: dict[str, Any], s: int, e: int, time_type: str
    ) -> dict[str, Any]:
        at = e if time_type.lower() == "mostrecenttime" else s
        units = src.units
        value: Any
        if kind == "Count":
            # Event-weighted: a number of events; time-weighted: seconds of good data (see _interval_stats).
            value, units = stats["count"], ("count" if isinstance(stats["count"], int) else "s")
        elif kind == "PercentGood":
            value, units = stats["percent_good"], "%"
        elif kind in ("Minimum", "Maximum"):
            pair = stats.get("min" if kind == "Minimum" else "max")
            value = None if pair is None else pair[0]
            if pair is not None and time_type.lower() == "auto":
                at = pair[1]
        elif kind == "Range":
            value = None if "min" not in stats else stats["max"][0] - stats["min"][0]
        else:
            key = {"Total": "total", "Average": "average", "StdDev": "std", "PopulationStdDev": "pstd"}[kind]
            value = stats.get(key)
        good = value is not None
        if not good:
            value = {"Name": SYSTEM_STATES[CALC_FAILED], "Value": CALC_FAILED, "IsSystem": True}
        return {
            "Timestamp": format_us(at),
            "Value": value,
            "UnitsAbbreviation": units,
            "Good": good,
            "Questionable": False,
            "Substituted": False,
            "Annotated": False,
        }


def summary_types(q: Query) -> list[str]:
    raw = q.get_all("summaryType") or ["Total"]
    out: list[str] = []
    canon = {t.lower(): t for t in SUMMARY_TYPES}
    for item in raw:
        for name in item.split(","):
            low = name.strip().lower()
            if low == "all":
                out.extend(SUMMARY_TYPES)
            elif low == "allfornonnumeric":
                out.extend(NON_NUMERIC_SUMMARIES)
            elif low in canon:
                out.append(canon[low])
            else:
                raise PIHTTPError(
                    400, f"The summaryType '{name}' is not valid; use one of {', '.join(SUMMARY_TYPES)}."
                )
    return list(dict.fromkeys(out))


def calculation_basis(q: Query) -> str:
    basis = (q.get("calculationBasis") or "TimeWeighted").lower()
    if basis not in TIME_BASES + EVENT_BASES:
        raise PIHTTPError(400, f"The calculationBasis '{q.get('calculationBasis')}' is not valid.")
    return basis


def time_type_param(q: Query) -> str:
    time_type = q.get("timeType") or "Auto"
    if time_type.lower() not in TIME_TYPES:
        raise PIHTTPError(
            400, f"The timeType '{time_type}' is not valid (use Auto, EarliestTime or MostRecentTime)."
        )
    return time_type


def summary_duration(q: Query) -> int | None:
    """summaryDuration (either sign; a negative one lays intervals back from the latest bound), with sampleType and
    sampleInterval validated: they only say how a filterExpression is sampled, which this emulator refuses."""
    sample_type = q.get("sampleType") or "ExpressionRecordedValues"
    if sample_type.lower() not in SAMPLE_TYPES:
        raise PIHTTPError(
            400, f"The sampleType '{sample_type}' is not valid (use ExpressionRecordedValues or Interval)."
        )
    if q.get("sampleInterval"):
        interval_param(q, "sampleInterval", None)
    raw = q.get("summaryDuration")
    if not raw:
        return None
    unit = raw.strip().lstrip("+-").lstrip("0123456789. ").lower()
    if unit in _CALENDAR_UNITS:
        raise PIHTTPError(
            400,
            f"summaryDuration '{raw}': calendar durations (months, years) are not implemented by this emulator; "
            "request days or hours.",
        )
    try:
        value = parse_interval(raw)
    except ValueError:
        raise PIHTTPError(
            400, f"The interval '{raw}' given for 'summaryDuration' is not a valid time span."
        ) from None
    if value == 0:
        raise PIHTTPError(400, f"The interval '{raw}' given for 'summaryDuration' must not be zero.")
    zone = q.get("timeZone") or "UTC"
    if unit in _WALL_CLOCK_UNITS and zone.upper() not in ("UTC", "GMT", "Z"):
        # PI lays day and week durations by wall-clock rules in the request's time zone (DST days are 23 or 25 h).
        raise PIHTTPError(
            400,
            f"summaryDuration '{raw}' in timeZone '{zone}' (wall-clock days) is not implemented by this emulator; "
            "use hours (e.g. '24h') or timeZone=UTC.",
        )
    return value


def boundary_param(q: Query) -> str:
    boundary = q.get("boundaryType") or "Inside"
    if boundary.lower() not in ("inside", "outside", "interpolated"):
        raise PIHTTPError(
            400, f"The boundaryType '{boundary}' is not valid (use Inside, Outside or Interpolated)."
        )
    return boundary


def max_count_param(q: Query, default: int = 1000) -> int:
    n = q.get_int("maxCount", default)
    if n < 1:
        raise PIHTTPError(400, f"The maxCount '{n}' must be at least 1.")
    return n


# --- responses -----------------------------------------------------------------------------------------------------


def values_envelope(values: Values, src: StreamSource, selector: FieldSelector) -> bytes:
    """{"Links":{},"Items":[…],"UnitsAbbreviation":"…"} built from column fragments."""
    parts: list[str] = []
    if selector.keeps(("Links",)):
        parts.append('"Links":{}')
    if selector.keeps(("Items",)):
        fields = selector.value_fields(("Items",))
        parts.append('"Items":' + timed_values_text(values, src.point, fields, src.units))
    if selector.keeps(("UnitsAbbreviation",)):
        parts.append('"UnitsAbbreviation":' + orjson.dumps(src.units).decode())
    count_values(len(values))
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def raw_json(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type=JSON_TYPE)


def single_value(values: Values, src: StreamSource, selector: FieldSelector) -> Response:
    fields = selector.value_fields(())
    frags = timed_value_fragments(values.take(slice(0, 1)), src.point, fields, src.units)
    count_values(1)
    return raw_json(frags[0].encode("utf-8"))


def no_data(point: Point, at: int) -> Values:
    return from_events(point, [at], [system_event(NO_DATA)])


def value_at(state: EmulatorState, src: StreamSource, q: Query) -> Values:
    """GetValue: the snapshot by default, the interpolated value at `time` when given."""
    now = state.clock.now_us()
    if q.get("time"):
        return state.archive.interpolate(src.point, [time_param(q, "time", "*", now)])
    if src.default_range is not None:
        # An event-frame attribute's time context is the frame: its value is the one at the frame's end.
        return state.archive.interpolate(src.point, [min(src.default_range[1], now)])
    snap = state.archive.snapshot(src.point)
    return snap if len(snap) else no_data(src.point, now)


def end_value(state: EmulatorState, src: StreamSource) -> Values:
    snap = state.archive.snapshot(src.point)
    return snap if len(snap) else no_data(src.point, state.clock.now_us())


# --- handlers ------------------------------------------------------------------------------------------------------


def get_recorded(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    max_count = max_count_param(q)
    limit = state.config.max_returned_items
    vals = Engine(state).recorded(src.point, start, end, boundary_param(q), min(max_count, limit + 1))
    if len(vals) > limit:
        raise too_many(limit)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_interpolated(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    interval = interval_param(q, "interval", "1h")
    assert interval is not None
    engine = Engine(state)
    times = engine.interpolated_times(start, end, interval, state.config.max_returned_items)
    vals = engine.interpolated(src.point, times)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_plot(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    intervals = q.get_int("intervals", 24)
    if intervals < 1:
        raise PIHTTPError(400, f"The intervals '{intervals}' must be at least 1.")
    if 5 * intervals + 2 > state.config.max_returned_items:
        raise too_many(state.config.max_returned_items)
    vals = Engine(state).plot(src.point, start, end, intervals)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def summary_body(state: EmulatorState, src: StreamSource, q: Query) -> list[dict[str, Any]]:
    start, end = time_range(q, state.clock.now_us(), src)
    return Engine(state).summary(
        src, start, end, summary_types(q), calculation_basis(q), summary_duration(q), time_type_param(q)
    )


def get_summary(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    body = {"Links": {}, "Items": summary_body(state, src, q)}
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


def get_value(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    return single_value(value_at(state, src, q), src, FieldSelector(q.get("selectedFields")))


def get_end(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    return single_value(end_value(state, src), src, FieldSelector(q.get("selectedFields")))


def recorded_at_time(state: EmulatorState, src: StreamSource, at: int, mode: str) -> Values:
    archive = state.archive
    point = src.point
    m = mode.lower()
    if m in ("auto", "atorbefore"):
        vals = archive.before(point, at, inclusive=True)
    elif m == "before":
        vals = archive.before(point, at, inclusive=False)
    elif m == "atorafter":
        vals = archive.after(point, at, inclusive=True)
    elif m == "after":
        vals = archive.after(point, at, inclusive=False)
    elif m == "exact":
        vals = archive.recorded(point, at, at, limit=1)
    else:
        raise PIHTTPError(
            400,
            f"The retrievalMode '{mode}' is not valid (Auto, AtOrBefore, Before, AtOrAfter, After, Exact).",
        )
    return vals if len(vals) else no_data(point, at)


def get_recorded_at_time(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    if not q.get("time"):
        raise PIHTTPError(400, "The 'time' parameter is required.")
    at = time_param(q, "time", "*", state.clock.now_us())
    vals = recorded_at_time(state, src, at, q.get("retrievalMode") or "Auto")
    return single_value(vals, src, FieldSelector(q.get("selectedFields")))


# --- writes --------------------------------------------------------------------------------------------------------


def parse_event(point: Point, item: Any, now_us: int, where: str) -> tuple[int, Event]:
    """A TimedValue body → (timestamp, Event), validated against the point type; PIHTTPError(400) otherwise."""
    if not isinstance(item, dict):
        raise PIHTTPError(400, f"{where}: a TimedValue object is expected, got {type(item).__name__}.")
    lowered = {str(k).lower(): v for k, v in item.items()}
    try:
        ts = parse_time(str(lowered.get("timestamp") or "*"), now_us)
    except ValueError:
        raise PIHTTPError(
            400, f"{where}: the Timestamp '{lowered.get('timestamp')}' is not a valid time."
        ) from None
    flags = {
        "good": bool(lowered.get("good", True)),
        "questionable": bool(lowered.get("questionable", False)),
        "substituted": bool(lowered.get("substituted", False)),
        "annotated": bool(lowered.get("annotated", False)),
    }
    if "value" not in lowered:
        raise PIHTTPError(400, f"{where}: the Value is missing.")
    raw = lowered["value"]
    system_code = _system_code(raw)
    if system_code is not None:
        return ts, Event(digital_code=system_code, is_system=True, good=False, **_minus_good(flags))
    ptype = point.point_type
    if point.is_numeric:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(float(raw)):
            raise PIHTTPError(
                400, f"{where}: Value {raw!r} is not a number, as {ptype} point '{point.name}' needs."
            )
        value = float(round(raw)) if point.is_integer else float(raw)
        return ts, Event(value=value, **flags)
    if ptype == "Digital" and point.digital_set is not None:
        code = _digital_code(point, raw)
        if code is None:
            states = ", ".join(name for name, _ in point.digital_set.states)
            raise PIHTTPError(
                400, f"{where}: Value {raw!r} is not a state of set '{point.digital_set.name}' ({states})."
            )
        return ts, Event(value=float(code), digital_code=code, **flags)
    if ptype == "Timestamp":
        try:
            text = format_us(parse_time(str(raw), now_us))
        except ValueError:
            raise PIHTTPError(400, f"{where}: Value {raw!r} is not a timestamp.") from None
        return ts, Event(text=text, **flags)
    return ts, Event(text=str(raw), **flags)


def _minus_good(flags: dict[str, bool]) -> dict[str, bool]:
    return {k: v for k, v in flags.items() if k != "good"}


def _system_code(raw: Any) -> int | None:
    if isinstance(raw, dict):
        name = raw.get("Name")
        if raw.get("IsSystem") or (isinstance(name, str) and name in SYSTEM_STATES.values()):
            code = raw.get("Value")
            if isinstance(code, int) and code in SYSTEM_STATES:
                return code
            return next((c for c, n in SYSTEM_STATES.items() if n == name), None)
    return None


def _digital_code(point: Point, raw: Any) -> int | None:
    assert point.digital_set is not None
    codes = point.digital_set.names_by_code
    if isinstance(raw, dict):
        raw = raw.get("Value", raw.get("Name"))
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float) and int(raw) == raw and int(raw) in codes:
        return int(raw)
    if isinstance(raw, str):
        return next((c for c, n in codes.items() if n.lower() == raw.lower()), None)
    return None


UPDATE_OPTIONS = ("replace", "insert", "noreplace", "replaceonly", "insertnocompression", "remove")


def apply_write(state: EmulatorState, point: Point, ts: int, event: Event, option: str) -> None:
    archive = state.archive
    if option == "replace":
        archive.replace(point, ts, event)
    elif option in ("insert", "insertnocompression"):
        archive.insert(point, ts, event)
    elif option == "noreplace":
        archive.no_replace(point, ts, event)
    elif option == "replaceonly":
        if archive.recorded(point, ts, ts, limit=1, now_us=max(ts, state.clock.now_us())):
            archive.replace(point, ts, event)
    elif option == "remove":
        archive.delete(point, ts)


def _write_options(q: Query) -> tuple[str, int]:
    option = (q.get("updateOption") or "Replace").lower()
    if option not in UPDATE_OPTIONS:
        raise PIHTTPError(400, f"The updateOption '{q.get('updateOption')}' is not valid.")
    buffer = (q.get("bufferOption") or "BufferIfPossible").lower()
    if buffer not in ("donotbuffer", "bufferifpossible", "buffer"):
        raise PIHTTPError(400, f"The bufferOption '{q.get('bufferOption')}' is not valid.")
    # A buffered write is accepted for later (202); an unbuffered one is done when we answer (204).
    return option, 204 if buffer == "donotbuffer" else 202


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PIHTTPError(400, f"The request body is not valid JSON: {exc}.") from None


async def post_value(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    option, status = _write_options(q)
    body = await _json_body(request)
    ts, event = parse_event(src.point, body, state.clock.now_us(), "Value")
    apply_write(state, src.point, ts, event, option)
    return Response(status_code=status)


async def post_recorded(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    option, status = _write_options(q)
    body = await _json_body(request)
    if not isinstance(body, list):
        raise PIHTTPError(400, "The request body must be a JSON array of TimedValues.")
    now = state.clock.now_us()
    events = [parse_event(src.point, item, now, f"Item {i}") for i, item in enumerate(body)]
    for ts, event in events:
        apply_write(state, src.point, ts, event, option)
    return Response(status_code=status)


def stream_links(request: Request, src: StreamSource) -> dict[str, str]:
    base = base_url(request)
    kind = (
        "points"
        if src.point.web_id == src.web_id or src.web_id.startswith(("I1DP", "P1DP"))
        else "attributes"
    )
    return {"Source": f"{base}/{kind}/{src.web_id}"}


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/streams/{web_id}/recorded", get_recorded, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/recorded", post_recorded, methods=["POST"]),
    Route("/piwebapi/streams/{web_id}/interpolated", get_interpolated, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/plot", get_plot, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/summary", get_summary, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/value", get_value, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/value", post_value, methods=["POST"]),
    Route("/piwebapi/streams/{web_id}/end", get_end, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/recordedattime", get_recorded_at_time, methods=["GET"]),
]
