"""The emulator's read engine, shared by the stream and stream-set controllers (and through them AF stream sets):
recorded values with PI's boundary types, interpolated and plot values, summaries and counts over intervals,
recorded-at-time and end values. Works on points and µs times; the routes parse HTTP parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mock_pi.archive import Archive, Values, from_events, system_event
from mock_pi.catalog import NO_DATA, Point
from mock_pi.http import PIHTTPError
from mock_pi.state import EmulatorState, StreamSource
from mock_pi.summaries import (
    NON_NUMERIC_SUMMARIES,
    Interval,
    interval_count,
    interval_stats,
    summary_intervals,
    summary_value,
)


def too_many(limit: int) -> PIHTTPError:
    """PI's 400 for a call that would return more than MaxReturnedItemsPerCall items."""
    return PIHTTPError(
        400,
        f"The number of items the request would return is greater than the maximum allowed ({limit}). "
        "Reduce the time range, maxCount or the number of streams.",
    )


@dataclass
class Engine:
    """Reads on one emulator state: its archive, and its item limit for summaries."""

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
            stats = interval_stats(self.archive, point, iv, basis)
            for t in types:
                results[t].append(summary_value(src, t, stats, iv.lo, iv.hi, time_type))
        return [{"Type": t, "Value": v} for t in types for v in results[t]]

    def counts(self, reads: list[tuple[Point, Interval]]) -> list[int]:
        """Good, non-system events per (point, interval), the interval's boundary events included as it says:
        `interval_stats`' count (event-weighted bases) for many streams in one pass."""
        values, offsets = self.archive.recorded_many([(p, iv.lo, iv.hi, 1 << 62) for p, iv in reads])
        stream = np.repeat(np.arange(len(reads)), np.diff(offsets))
        ivs = [iv for _, iv in reads]
        inside = Interval.mask_many(values.ts_us, stream, ivs)
        good = values.good & ~values.is_system & inside
        return np.bincount(stream[good], minlength=len(reads)).tolist()


def no_data(point: Point, at: int) -> Values:
    return from_events(point, [at], [system_event(NO_DATA)])


def end_value(state: EmulatorState, src: StreamSource) -> Values:
    snap = state.archive.snapshot(src.point)
    return snap if len(snap) else no_data(src.point, state.clock.now_us())


def recorded_at_times(state: EmulatorState, src: StreamSource, times: list[int], mode: str) -> Values:
    """GetRecordedAtTimes: one value per requested time, in the given order, each as `recorded_at_time` picks it."""
    return Values.concat([recorded_at_time(state, src, t, mode).take(slice(0, 1)) for t in times])


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
