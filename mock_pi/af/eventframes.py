"""AF event frames: generated per (database, UTC day) on first use from the seed (vectorised: 10,000 frames a day
in well under a second), kept in a small LRU cache, with Batch phases as child frames; in-progress frames, admin
closes, and the day-by-day walks that searches use."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np

from mock_pi import webid
from mock_pi.af.objects import (
    MAX_EF_DURATION_US,
    US_PER_DAY,
    US_PER_S,
    AssetServer,
    Database,
    Element,
    EventFrame,
    day_of,
)
from mock_pi.af.templates import BATCH_PHASES, EVENT_FRAME_KINDS, LONG_ALARM_S, LONG_ALARM_SHARE


class EventFramesMixin:
    """The event-frame side of `AFModel` (which provides the state below)."""

    seed: int
    server: AssetServer
    event_frames_per_day: int
    _lock: threading.RLock
    _ef_days: OrderedDict[tuple[int, int], list[EventFrame]]
    _ef_day_index: dict[tuple[int, int], dict[str, EventFrame]]
    _closed: dict[str, int]

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
        weights = np.array([k.weight for k in EVENT_FRAME_KINDS])
        kinds = rng.choice(len(EVENT_FRAME_KINDS), size=n, p=weights / weights.sum())
        frac = rng.random(n)
        long_alarm = rng.random(n) < LONG_ALARM_SHARE
        sev_pick = rng.integers(0, 1 << 30, n)
        primary = rng.integers(0, len(db.equipment), n)
        day_start = day * US_PER_DAY
        stamp = datetime.fromtimestamp(day_start // US_PER_S, UTC).strftime("%Y%m%d")
        width = max(4, len(str(n - 1)))
        out: list[EventFrame] = []
        for i in range(n):
            k = EVENT_FRAME_KINDS[int(kinds[i])]
            kind, lo, hi, sevs = k.template, k.min_s, k.max_s, k.severities
            if kind == "Alarm" and long_alarm[i]:
                lo, hi = LONG_ALARM_S
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
                for p_i, phase in enumerate(BATCH_PHASES):
                    end = (
                        start + duration if p_i == len(BATCH_PHASES) - 1 else t + int(duration * phase.share)
                    )
                    ef.children.append(
                        self._make_frame(db, ef, phase.name, "Batch Phase", t, end, "None", refs, p_i + 1)
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
