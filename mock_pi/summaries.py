"""PI summaries as the emulator calculates them: the summary types and calculation bases, how a request's range is
laid into intervals (`summary_intervals`), which boundary events each interval holds (`boundary_events`), and the
statistics of one interval, time- or event-weighted (`interval_stats`, `summary_value`)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mock_pi.archive import Archive, Values
from mock_pi.catalog import CALC_FAILED, SYSTEM_STATES, Point
from mock_pi.pitime import format_us

if TYPE_CHECKING:
    from mock_pi.state import StreamSource

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


def interval_stats(archive: Archive, point: Point, iv: Interval, basis: str) -> dict[str, Any]:
    """Statistics of one interval for `summary_value`: event-weighted over the events it holds, otherwise
    time-weighted between interpolated values at both ends."""
    s, e = iv.lo, iv.hi
    vals = archive.recorded(point, s, e)
    if basis in EVENT_BASES:
        return event_stats(point, vals.take(iv.mask(vals.ts_us)))
    stats: dict[str, Any] = {}
    if not point.is_numeric:
        good_us = time_good_us(archive, point, s, e, vals)
        stats["percent_good"] = 100.0 * good_us / (e - s) if e > s else 0.0
        stats["count"] = good_us / 1e6
        return stats
    # Time-weighted: interpolated values at both ends, then the events strictly inside. The basis may override
    # the point's step attribute: Continuous interpolates linearly, Discrete holds the previous value.
    step = point.step if basis == "timeweighted" else basis == "timeweighteddiscrete"
    shape = point if step == point.step else dataclasses.replace(point, step=step)
    edge = archive.interpolate(shape, [s, e])
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


def event_stats(point: Point, in_range: Values) -> dict[str, Any]:
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


def time_good_us(archive: Archive, point: Point, s: int, e: int, vals: Values) -> float:
    """Microseconds of [s, e) covered by good values (each holds until the next event), for stepped streams."""
    edge = archive.interpolate(point, [s])
    inner = vals.take((vals.ts_us > s) & (vals.ts_us < e))
    seq = Values.concat([edge, inner])
    t = np.r_[seq.ts_us, e].astype(np.float64)
    ok = seq.good & ~seq.is_system
    return float(np.diff(t)[ok].sum()) if e > s else 0.0


def summary_value(
    src: StreamSource, kind: str, stats: dict[str, Any], s: int, e: int, time_type: str
) -> dict[str, Any]:
    at = e if time_type.lower() == "mostrecenttime" else s
    units = src.units
    value: Any
    if kind == "Count":
        # Event-weighted: a number of events; time-weighted: seconds of good data (see interval_stats).
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
