"""Time-series reads: complete recorded values (stream sets split by URL length and MaxReturnedItemsPerCall,
per-stream continuations in POST /batch), interpolated, plot, end and current values, as VALUES_SCHEMA frames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import polars as pl

from osipi_dagster.lib.piwebapi.base import ClientBase, reading
from osipi_dagster.lib.piwebapi.decode import (
    StreamChunk,
    check_errors,
    decode_end_values,
    decode_streamset,
    malformed,
    streamset_chunks,
    values_frame,
)
from osipi_dagster.lib.piwebapi.errors import NotFoundError, PIWebAPIError, TooManyValuesError
from osipi_dagster.lib.piwebapi.pitime import TimeLike, format_span, parse_interval, to_pi
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster.lib.piwebapi.typed import get_streamset

_HEADROOM = 1.2
# selectedFields for value reads: drop Name/Path/Links and the per-value UnitsAbbreviation (~17 % fewer bytes and
# less server work). Errors stay selected so handled errors can never be filtered away.
_VALUE_FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated", "Errors")
SET_FIELDS = ";".join(
    ["Items.WebId", "Items.UnitsAbbreviation", "Items.Errors"] + [f"Items.Items.{f}" for f in _VALUE_FIELDS]
)
STREAM_FIELDS = ";".join(["UnitsAbbreviation", "Errors"] + [f"Items.{f}" for f in _VALUE_FIELDS])
_TIMESTAMP = itemgetter("Timestamp")


def _continued_items(body: Any, web_id: str) -> list[dict[str, Any]]:
    """The values of a continuation sub-response, checked before the skip logic reads their timestamps."""
    path = f"/streams/{web_id}/recorded (in POST /batch)"
    with reading("GET", path, web_id):
        items = body.get("Items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise malformed("recorded values without a list of Items", web_id)
        check_errors(body, "recorded values", web_id)
        try:
            stamps = list(map(_TIMESTAMP, items))  # one C-level pass
        except (KeyError, TypeError):
            stamps = [None]
        if None in stamps:
            raise malformed("a value without a Timestamp", web_id)
    return items


class _StreamState:
    """Per-stream continuation state while a window is read in several calls."""

    __slots__ = ("last_ts", "seen_at_last", "web_id")

    def __init__(self, web_id: str, last_ts: str, seen_at_last: int) -> None:
        self.web_id = web_id
        self.last_ts = last_ts
        self.seen_at_last = seen_at_last


class ReadsMixin(ClientBase):
    """Values of streams over time: recorded (complete, half-open), interpolated, plot, end and current."""

    # -- time series: recorded -----------------------------------------------------------------------------------
    def iter_recorded(
        self,
        web_ids: Iterable[str],
        start: TimeLike,
        end: TimeLike,
        *,
        include_end: bool = False,
        values_per_call: int | None = None,
    ) -> Iterator[pl.DataFrame]:
        """Every recorded value of each stream in [start, end) — or [start, end] with include_end — as VALUES_SCHEMA.

        Complete: streams cut at maxCount are continued from their last timestamp, skipping the values already
        seen there; calls over MaxReturnedItemsPerCall are split. Half-open by default so adjacent windows never
        share a value. Frames come per (stream group, time window), in order, with bounded memory: windows are
        planned from learned densities to hold at most `values_per_call` values (default and cap:
        MaxReturnedItemsPerCall), so a smaller budget bounds the size of each frame.
        """
        web_ids = list(dict.fromkeys(web_ids))
        units = self._recorded_units(web_ids, start, end, include_end, values_per_call)
        for frame in self.session.map_ordered(lambda u: self._recorded_window(*u), units):
            self.stats.add(values=len(frame))
            yield frame
        self._raise_if_all_missing(web_ids, "/streamsets/recorded")

    def plan_recorded(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, values_per_call: int | None = None
    ) -> int:
        """How many frames (planned stream-set calls) iter_recorded would yield if called now with these arguments;
        for progress reporting ("pages done / total"). Continuations add calls, never frames."""
        return len(self._recorded_units(web_ids, start, end, False, values_per_call))

    def _recorded_units(
        self,
        web_ids: Iterable[str],
        start: TimeLike,
        end: TimeLike,
        include_end: bool,
        values_per_call: int | None = None,
    ) -> list[tuple[list[str], datetime, datetime, bool]]:
        """(stream group, window start, window end, include_end) per planned call, in yield order."""
        ids = list(dict.fromkeys(web_ids))
        t0, t1 = self._times(start, end)
        if t1 < t0:
            raise ValueError(
                f"end {to_pi(t1)} is before start {to_pi(t0)}: recorded reads go forward in time."
            )
        units = []
        for group in self._url_groups(ids):
            windows = self._windows(group, t0, t1, values_per_call)
            for i, (ws, we) in enumerate(windows):
                last = i == len(windows) - 1
                units.append((group, ws, we, include_end and last))
        return units

    def recorded(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, *, include_end: bool = False
    ) -> pl.DataFrame:
        """All of iter_recorded in one frame."""
        frames = list(self.iter_recorded(web_ids, start, end, include_end=include_end))
        return pl.concat(frames) if frames else pl.DataFrame(schema=VALUES_SCHEMA)

    def _recorded_window(
        self, web_ids: list[str], start: datetime, end: datetime, include_end: bool
    ) -> pl.DataFrame:
        """One stream group over one window: a stream-set call, then batch continuations until complete."""
        web_ids = self._not_missing(web_ids)
        if not web_ids:
            return pl.DataFrame(schema=VALUES_SCHEMA)
        try:
            chunks, per_stream = self._streamset_recorded(web_ids, start, end)
        except NotFoundError as err:
            remaining = self._drop_missing(web_ids, err)
            if not remaining:
                return pl.DataFrame(schema=VALUES_SCHEMA)
            return self._recorded_window(remaining, start, end, include_end)
        except TooManyValuesError as err:
            self._note_limit(err)
            if len(web_ids) > 1:
                half = len(web_ids) // 2
                parts = [
                    self._recorded_window(web_ids[:half], start, end, include_end),
                    self._recorded_window(web_ids[half:], start, end, include_end),
                ]
            else:
                mid = start + (end - start) / 2
                if mid <= start:
                    raise
                parts = [
                    self._recorded_window(web_ids, start, mid, False),
                    self._recorded_window(web_ids, mid, end, include_end),
                ]
            return pl.concat(parts)
        # Each round is decoded as soon as it arrives: parsed JSON costs ~10x the memory of the columns, and
        # holding every round of a dense window as dicts made peak RSS grow with the window length. Ordinals are
        # computed per chunk (continuations carry their offset), so decoding per round gives the same values.
        # Decoding comes first: it rejects malformed values before the continuation logic reads their timestamps.
        with reading("GET", "/streamsets/recorded"):
            frames = [values_frame(_by_stream(chunks, web_ids))]
        counts: dict[str, int] = {}
        pending: dict[str, _StreamState] = {}
        for c in chunks:
            counts[c.web_id] = len(c.items)
            if len(c.items) >= per_stream:
                pending[c.web_id] = self._state_after(c.web_id, c.items, 0, None)
        del chunks
        while pending:
            more_chunks, pending = self._continue(pending, end)
            for c in more_chunks:
                counts[c.web_id] = counts.get(c.web_id, 0) + len(c.items)
            with reading("GET", "/streams/{webId}/recorded (in POST /batch)"):
                frames.append(values_frame(_by_stream(more_chunks, web_ids)))
        self._learn(counts, (end - start).total_seconds())
        frame = frames[0] if len(frames) == 1 else _stream_order(pl.concat(frames), web_ids)
        # boundaryType=Inside includes values stamped exactly at `end`: drop them (a copy only when there are any).
        if not include_end and len(frame) and frame["timestamp"].max() >= end:  # type: ignore[operator]
            frame = frame.filter(pl.col("timestamp") < end)
        return frame

    def _streamset_recorded(
        self, web_ids: list[str], start: datetime, end: datetime
    ) -> tuple[list[StreamChunk], int]:
        # maxCount per stream. With every stream's density known and the expected total within
        # MaxReturnedItemsPerCall, ask for everything (one call). Otherwise split the budget evenly so the call can
        # never exceed the limit (no 400); streams that hit their share are continued individually.
        with self._lock:
            densities = [self._density.get(w) for w in web_ids]
        seconds = (end - start).total_seconds()
        if all(d is not None for d in densities) and sum(densities) * seconds * _HEADROOM <= self._max_items:  # type: ignore[misc]
            per_stream = self._max_items
        else:
            per_stream = max(1, self._max_items // len(web_ids))
        params = [("webId", w) for w in web_ids] + [
            ("startTime", to_pi(start)),
            ("endTime", to_pi(end)),
            ("boundaryType", "Inside"),
            ("maxCount", str(per_stream)),
            ("selectedFields", SET_FIELDS),
        ]
        body = get_streamset(
            self, "streamsets/recorded", params, web_id=web_ids[0] if len(web_ids) == 1 else None
        )
        with reading("GET", "/streamsets/recorded", web_ids[0] if len(web_ids) == 1 else None):
            chunks = streamset_chunks(body, "recorded values")
            got = {c.web_id for c in chunks}
            lost = [w for w in web_ids if w not in got]
            if lost:
                # A stream left out of a 200 answer would silently read as "no values in this window".
                raise malformed(f"no item for {len(lost)} requested stream(s), first {lost[0]}", None)
        return chunks, per_stream

    @staticmethod
    def _state_after(
        web_id: str, items: list[dict[str, Any]], skipped: int, prev: _StreamState | None
    ) -> _StreamState:
        """Continuation point: the last timestamp and how many values at it have been delivered (k)."""
        last_ts = items[-1]["Timestamp"] if items else (prev.last_ts if prev else "")
        k = 0
        for v in reversed(items):
            if v["Timestamp"] != last_ts:
                break
            k += 1
        if prev is not None and prev.last_ts == last_ts and len(items) == k:
            # Every returned value sat at the previous last timestamp: add to what was delivered before.
            k += prev.seen_at_last
        return _StreamState(web_id, last_ts, k)

    def _continue(
        self, pending: dict[str, _StreamState], end: datetime
    ) -> tuple[list[StreamChunk], dict[str, _StreamState]]:
        """One round of continuations for truncated streams, all in one POST /batch (different start per stream)."""
        n = len(pending)
        per_stream = max(1000, self._max_items // n)
        per_stream = min(per_stream, self._max_items)
        max_counts = {}
        urls = {}
        for w, st in pending.items():
            # A run of equal timestamps longer than maxCount would never advance: ask for enough to pass it.
            m = min(self._max_items, max(per_stream, st.seen_at_last + per_stream))
            max_counts[w] = m
            urls[w] = self.url(
                f"streams/{w}/recorded",
                [
                    ("startTime", st.last_ts),
                    ("endTime", to_pi(end)),
                    ("boundaryType", "Inside"),
                    ("maxCount", str(m)),
                    ("selectedFields", STREAM_FIELDS),
                ],
            )
        try:
            contents, _ = self.batch_get(urls, web_ids={w: w for w in urls})
        except TooManyValuesError as err:
            before = self._max_items
            self._note_limit(err)
            if self._max_items >= before:
                raise  # the limit did not go down: retrying the same round would loop forever
            return [], pending
        chunks: list[StreamChunk] = []
        still: dict[str, _StreamState] = {}
        for w, st in pending.items():
            body = contents.get(w)
            items = _continued_items(body, w)
            # Skip the k values already delivered at the last timestamp (they come first, in archive order).
            skip = 0
            while skip < len(items) and skip < st.seen_at_last and items[skip]["Timestamp"] == st.last_ts:
                skip += 1
            if skip < st.seen_at_last and len(items) < max_counts[w]:
                # Fewer values at that timestamp than before: the archive changed under us (an edit). Re-reading
                # cannot make the result consistent, so say so instead of returning a silently different answer.
                raise PIWebAPIError(
                    f"recorded values of stream {w} changed while reading (fewer values at {st.last_ts})",
                    web_id=w,
                    advice="the archive was edited during the read; re-run the window",
                )
            fresh = items[skip:]
            offset = st.seen_at_last if fresh and fresh[0]["Timestamp"] == st.last_ts else 0
            if fresh:
                chunks.append(StreamChunk(w, fresh, body.get("UnitsAbbreviation"), ordinal_offset=offset))
            if len(items) >= max_counts[w]:
                still[w] = self._state_after(w, fresh, skip, st)
        return chunks, still

    # -- planning ----------------------------------------------------------------------------------------------
    def _windows(
        self, web_ids: Sequence[str], start: datetime, end: datetime, values_per_call: int | None = None
    ) -> list[tuple[datetime, datetime]]:
        """Split [start, end] so the expected values per call (from observed densities) fit one call, or
        `values_per_call` when smaller."""
        seconds = (end - start).total_seconds()
        with self._lock:
            expected = sum(self._density.get(w, 0.0) for w in web_ids) * seconds
            budget = min(self._max_items, values_per_call or self._max_items)
        # 20 % headroom: density varies within a window; a miss costs one continuation, not correctness.
        # Windows of at least a second: a wildly wrong density (e.g. a stored one) costs calls, never a runaway plan.
        n = max(1, min(math.ceil(expected * _HEADROOM / budget), math.ceil(seconds)))
        step = (end - start) / n
        return [(start + step * i, end if i == n - 1 else start + step * (i + 1)) for i in range(n)]

    def seed_densities(self, densities: Mapping[str, float]) -> None:
        """Densities (recorded values per second) known from elsewhere, e.g. stored by a previous run, for streams
        this client has not observed itself: windows are planned from them as from learned ones, and what a read
        observes replaces them. Negative or non-finite values are ignored."""
        with self._lock:
            for w, d in densities.items():
                if w not in self._density and math.isfinite(d) and d >= 0:
                    self._density[w] = float(d)

    def densities(self, web_ids: Iterable[str]) -> dict[str, float]:
        """The densities (recorded values per second) this client knows, learned or seeded, of `web_ids`."""
        with self._lock:
            return {w: self._density[w] for w in web_ids if w in self._density}

    def _learn(self, counts: dict[str, int], seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            for w, n in counts.items():
                self._density[w] = n / seconds

    # -- other retrievals --------------------------------------------------------------------------------------
    def interpolated(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, interval: str | timedelta
    ) -> pl.DataFrame:
        """Interpolated values every `interval` from start to end inclusive (VALUES_SCHEMA, ordinal 0)."""
        t0, t1 = self._times(start, end)
        step = parse_interval(interval)
        if step.total_seconds() <= 0:
            raise ValueError(f"interval {interval!r} must be positive.")
        n = int((t1 - t0) / step) + 1
        # A single stream over more intervals than one call may return: split on interval boundaries.
        per_call = max(1, self._max_items - 1)
        frames = []
        piece_start = t0
        while piece_start <= t1:
            piece_end = min(t1, piece_start + step * (min(n, per_call) - 1))
            frame = self._streamset_frames(
                "interpolated",
                list(web_ids),
                [
                    ("startTime", to_pi(piece_start)),
                    ("endTime", to_pi(piece_end)),
                    ("interval", format_span(step)),
                ],
                int((piece_end - piece_start) / step) + 1,
                lambda b: decode_streamset(b, "interpolated values"),
            )
            frames.append(frame)
            piece_start = piece_end + step
        out = pl.concat(frames)
        self.stats.add(values=len(out))
        return out

    def plot(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, intervals: int = 24
    ) -> pl.DataFrame:
        """Plot values (first/last/min/max/exceptions per interval, at most 5 per interval) as VALUES_SCHEMA."""
        t0, t1 = self._times(start, end)
        if intervals * 5 > self._max_items:
            raise ValueError(
                f"intervals={intervals} could exceed {self._max_items} values per stream: use fewer."
            )
        out = self._streamset_frames(
            "plot",
            list(web_ids),
            [("startTime", to_pi(t0)), ("endTime", to_pi(t1)), ("intervals", str(intervals))],
            5 * intervals,
            lambda b: decode_streamset(b, "plot values"),
        )
        self.stats.add(values=len(out))
        return out

    def end_values(self, web_ids: Iterable[str]) -> pl.DataFrame:
        """The last recorded value of each stream (GET streamsets/end), VALUES_SCHEMA."""
        return self._streamset_frames("end", list(web_ids), [], 1, decode_end_values)

    def current_values(self, web_ids: Iterable[str], time: TimeLike | None = None) -> pl.DataFrame:
        """Snapshot values (GET streamsets/value), or values at `time`, VALUES_SCHEMA."""
        params = [] if time is None else [("time", to_pi(self._times(time)[0]))]
        return self._streamset_frames("value", list(web_ids), params, 1, decode_end_values)


def _stream_order(frame: pl.DataFrame, order: Sequence[str]) -> pl.DataFrame:
    """Rows grouped by stream in request order, each stream's rows in read order (a stable sort by stream rank)."""
    rank = pl.Series("web_id", list(order), dtype=pl.Utf8)
    keys = frame["web_id"].replace_strict(rank, pl.int_range(len(rank), eager=True), default=len(rank))
    return frame.sort(keys, maintain_order=True)


def _by_stream(chunks: list[StreamChunk], order: Sequence[str]) -> list[StreamChunk]:
    """Chunks grouped by stream (in request order), each stream's chunks in read order, for ordinal runs."""
    rank = {w: i for i, w in enumerate(order)}
    return sorted(chunks, key=lambda c: rank.get(c.web_id, len(rank)))
