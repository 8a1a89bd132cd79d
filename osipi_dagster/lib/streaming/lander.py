"""The lander: a long-running loop that commits sealed spool segments to Delta as soon as they appear.

Each landing is one insert-if-absent merge (landing.py) whose commit carries the batch's report (REPORT_KEY), so
Dagster can show every landing as a materialization without a run (defs/streaming/reporting.py). Crash-safe by
construction: segments move to landed/ only after their commit, and a replayed segment inserts nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.retry import RetryPolicy
from osipi_dagster.lib.streaming.compaction import (
    DEFAULT_COMPACT_INTERVAL_S,
    DEFAULT_COMPACT_TARGET_BYTES,
    DEFAULT_LOG_RETENTION_HOURS,
    compact_dates,
    ensure_log_retention,
)
from osipi_dagster.lib.streaming.landing import TIMESERIES_TABLE, LandingReport, land_segments
from osipi_dagster.lib.streaming.spool import Segment, SpoolError, SpoolReader

log = logging.getLogger(__name__)

LANDER_LOCK_FILE = "LANDER.LOCK"
# Compressed spool bytes landed in one commit at most: a backlog after an outage of hours lands in bounded slices.
DEFAULT_MAX_BATCH_BYTES = 16 << 20
# Listener figures copied into each landing's report (what the Dagster UI shows next to the batch).
LISTENER_REPORTED = (
    "started_at",
    "channels",
    "channels_connected",
    "streams",
    "connects",
    "reconnects",
    "heartbeats",
    "gap_reads",
    "gap_values",
    "silence_timeouts",
    "values_per_s",
    "lag_p50_s",
    "lag_max_s",
    "last_message_age_s",
    "last_error",
    "last_error_at",
    "published_at",
)


@dataclass
class LanderStats:
    """Counters since the lander started, and the last landing's figures."""

    landings: int = 0  # batches landed (committed, or nothing left to insert)
    commits: int = 0
    values_read: int = 0
    values_inserted: int = 0
    values_superseded: int = 0  # refused: their hour and stream already hold the archive's values
    errors: int = 0
    failing_since: str | None = None  # first failed attempt of the current failure streak
    last_error: str | None = None
    last_error_at: str | None = None
    last_landing_at: str | None = None
    last_latency_p50_s: float | None = None
    last_latency_p95_s: float | None = None
    last_duration_s: float | None = None
    delta_version: int | None = None
    segments_pruned: int = 0
    compactions: int = 0  # compaction passes that merged files
    compaction_files_removed: int = 0
    compaction_errors: int = (
        0  # failed passes (e.g. a concurrent hourly replace): retried at the next interval
    )


def take_batch(ready: list[Segment], max_bytes: int) -> list[Segment]:
    """The oldest ready segments whose sizes add up to at most max_bytes (at least one)."""
    batch: list[Segment] = []
    total = 0
    for seg in ready:
        if batch and total + seg.size > max_bytes:
            break
        batch.append(seg)
        total += seg.size
    return batch


def dates_between(first: datetime | None, last: datetime | None) -> set[date]:
    """The UTC dates (the table's `date` partitions) from first to last."""
    if first is None or last is None:
        return set()
    day, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    return {day + timedelta(days=i) for i in range((end - day).days + 1)}


class Lander:
    """Land every sealed segment of `spool` into the lake's `pi_timeseries`, one commit per batch.

    `listener_figures` gives the listener's figures for each report (the live listener when embedded in its
    process, else the state it publishes in the spool). A failed landing is retried with the retry policy's
    backoff (capped at `backoff_max_s`) for as long as the lander runs; its segments wait in ready/. Every
    `compact_interval_s` (0: never) the dates landed since the last pass are compacted (compaction.py). After its
    first commit the lander sets the table's Delta log retention to `log_retention_hours` (None: leave the table's
    own), so the checkpoints delta-rs writes every `delta.checkpointInterval` commits also delete the older log.
    `before_compact` runs between a compaction's snapshot and each date's commit (a test seam).
    """

    def __init__(
        self,
        lake: Lake,
        spool: SpoolReader,
        *,
        table: str = TIMESERIES_TABLE,
        poll_s: float = 0.1,
        min_interval_s: float = 0.0,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        keep_landed_hours: float = 24.0,
        backoff_max_s: float = 10.0,
        listener_figures: Callable[[], Mapping[str, object]] | None = None,
        wake: threading.Event | None = None,
        compact_interval_s: float = DEFAULT_COMPACT_INTERVAL_S,
        compact_target_bytes: int = DEFAULT_COMPACT_TARGET_BYTES,
        log_retention_hours: float | None = DEFAULT_LOG_RETENTION_HOURS,
        before_compact: Callable[[date], None] | None = None,
    ) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        if max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be at least 1, got {max_batch_bytes}")
        if log_retention_hours is not None and log_retention_hours < 1:
            raise ValueError(
                f"log_retention_hours must be at least 1 (the report sensor reads the log after its last "
                f"reported version), got {log_retention_hours}"
            )
        self.lake = lake
        self.spool = spool
        self.table = table
        self.poll_s = poll_s
        self.min_interval_s = min_interval_s
        self.max_batch_bytes = max_batch_bytes
        self.keep_landed_hours = keep_landed_hours
        self.backoff_max_s = backoff_max_s
        self.listener_figures = listener_figures or spool.listener_state
        self.wake = wake
        self.compact_interval_s = compact_interval_s
        self.compact_target_bytes = compact_target_bytes
        self.log_retention_hours = log_retention_hours
        self.before_compact = before_compact
        self._log_retention_set = log_retention_hours is None
        self._to_compact: set[date] = set()
        self._last_compaction = time.monotonic()
        self.stats = LanderStats()
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._lock_fh = open(spool.root / LANDER_LOCK_FILE, "a+b")  # noqa: SIM115 - held while the lander lives
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise SpoolError(
                f"another lander holds {spool.root / LANDER_LOCK_FILE}: one lander per spool directory"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def __enter__(self) -> Lander:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- landing ---------------------------------------------------------------------------------------------
    def land_once(self) -> LandingReport | None:
        """Land the oldest ready segments (up to max_batch_bytes); None when nothing is waiting."""
        ready = self.spool.ready()
        batch = take_batch(ready, self.max_batch_bytes)
        if not batch:
            return None
        listener = self.listener_figures()
        with self._lock:
            landings, errors = self.stats.landings, self.stats.errors
        extra = {
            "listener": {k: listener.get(k) for k in LISTENER_REPORTED if k in listener},
            # Segments still waiting behind this batch: 0-2 in steady state, more while a backlog drains.
            "lander": {
                "landings": landings,
                "errors": errors,
                "spool_backlog_segments": len(ready) - len(batch),
            },
        }
        report = land_segments(
            self.lake, self.spool, [s.name for s in batch], table=self.table, report_extra=extra
        )
        with self._lock:
            st = self.stats
            st.landings += 1
            st.commits += report.delta_version is not None
            st.values_read += report.rows_read
            st.values_inserted += report.inserted
            st.values_superseded += report.superseded_by_archive
            st.failing_since = None
            st.last_landing_at = datetime.now(UTC).isoformat()
            st.last_latency_p50_s, st.last_latency_p95_s = report.latency_p50_s, report.latency_p95_s
            st.last_duration_s = report.duration_s
            if report.delta_version is not None:
                st.delta_version = report.delta_version
        if report.delta_version is not None:
            self._to_compact |= dates_between(report.first_timestamp, report.last_timestamp)
            self._set_log_retention()
        return report

    def _set_log_retention(self) -> None:
        """Once per lander, after a commit (the table exists): the table's log retention; retried after the next
        landing when it fails (e.g. a concurrent commit)."""
        if self._log_retention_set or self.log_retention_hours is None:
            return
        try:
            self._log_retention_set = ensure_log_retention(
                self.lake.table(self.table), self.log_retention_hours
            )
        except Exception as exc:
            log.warning("setting the Delta log retention failed (%s: %s); retried", type(exc).__name__, exc)

    def compact_due(self) -> None:
        """Compact the dates landed since the last pass once `compact_interval_s` has passed; a failure is logged
        and counted, and the dates wait for the next pass."""
        if not self.compact_interval_s or not self._to_compact:
            return
        if time.monotonic() - self._last_compaction < self.compact_interval_s:
            return
        self._last_compaction = time.monotonic()
        dates = set(self._to_compact)
        try:
            done = compact_dates(
                self.lake.table(self.table),
                dates,
                self.compact_target_bytes,
                before_commit=self.before_compact,
            )
        except Exception as exc:
            with self._lock:
                self.stats.compaction_errors += 1
            log.warning(
                "compaction of %s failed (%s: %s); retried next pass", sorted(dates), type(exc).__name__, exc
            )
            return
        self._to_compact -= dates
        with self._lock:
            self.stats.compactions += done["commits"] > 0
            self.stats.compaction_files_removed += done["files_removed"]

    def run(self, stop: threading.Event) -> None:
        """Land until `stop` is set; failures are logged, counted and retried with backoff."""
        policy = RetryPolicy(max_retries=None, backoff_max_s=self.backoff_max_s, sleep=stop.wait)
        attempts = policy.attempts()
        last_start = 0.0
        last_prune = time.monotonic()
        while not stop.is_set():
            self._beat = time.monotonic()
            wait = self.min_interval_s - (self._beat - last_start)
            if wait > 0:
                stop.wait(wait)
                continue
            last_start = time.monotonic()
            try:
                report = self.land_once()
            except Exception as exc:
                delay = attempts.next_delay() or self.backoff_max_s
                with self._lock:
                    now = datetime.now(UTC).isoformat()
                    self.stats.errors += 1
                    self.stats.failing_since = self.stats.failing_since or now
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    self.stats.last_error_at = now
                log.warning("landing failed (%s: %s); retrying in %.2fs", type(exc).__name__, exc, delay)
                attempts.wait(delay)
                continue
            attempts = policy.attempts()
            self.compact_due()
            if time.monotonic() - last_prune > 60:
                last_prune = time.monotonic()
                pruned = self.spool.prune_landed(self.keep_landed_hours * 3600)
                with self._lock:
                    self.stats.segments_pruned += pruned
            if report is None:
                # Nothing sealed yet: wait for the listener's next seal (embedded) or poll the spool.
                if self.wake is not None:
                    self.wake.wait(self.poll_s)
                    self.wake.clear()
                else:
                    stop.wait(self.poll_s)

    # -- figures, liveness, readiness --------------------------------------------------------------------------
    def figures(self) -> dict[str, object]:
        """Counters, the last landing, and the spool backlog (segments waiting, their bytes, the oldest's age)."""
        with self._lock:
            out: dict[str, object] = asdict(self.stats)
        out.update(backlog(self.spool))
        return out

    def alive(self, stale_s: float = 60.0) -> list[str]:
        idle = time.monotonic() - self._beat
        return [f"landing loop has not turned for {idle:.0f}s"] if idle > stale_s + self.backoff_max_s else []

    def ready(self, max_backlog_age_s: float = 60.0) -> list[str]:
        """Why the lander is not ready (empty = ready): failing landings, or a backlog older than allowed."""
        problems = []
        with self._lock:
            if self.stats.failing_since is not None:
                problems.append(f"landing failing since {self.stats.failing_since}: {self.stats.last_error}")
        age = backlog(self.spool)["spool_oldest_ready_age_s"]
        if isinstance(age, float) and age > max_backlog_age_s:
            problems.append(
                f"oldest sealed segment waits for {age:.0f}s (more than {max_backlog_age_s:.0f}s)"
            )
        return problems


def backlog(spool: SpoolReader) -> dict[str, object]:
    """Sealed segments waiting to land: how many, their bytes, and how long the oldest has waited."""
    ready = spool.ready()
    return {
        "spool_backlog_segments": len(ready),
        "spool_backlog_bytes": sum(s.size for s in ready),
        "spool_oldest_ready_age_s": round(max(0.0, time.time() - ready[0].sealed_at), 3) if ready else 0.0,
    }
