"""Hygiene of the table the lander writes: compaction of the dates it lands, and a bounded Delta log.

Compaction: the lander calls `compact_dates` every `compact_interval_s` for the dates it landed since the last
compaction, so a date holds a bounded number of files between the weekly z-order (defs/lake/maintenance.py) instead
of 3,600 an hour. Files already at `target_bytes` are left alone (delta-rs bins only smaller files), so each pass
rewrites at most about one target's worth of data per date. The commit carries no report, so Dagster's report sensor
skips it. A pass that loses a commit race to the hourly replace (the replace removed files the pass read) fails with
delta-rs' CommitFailedError and commits nothing; the lander retries the dates at the next interval.

Log: a landing a second is 86,400 commit files a day. delta-rs writes a checkpoint every `delta.checkpointInterval`
commits (default 100) and, after each checkpoint, deletes the log files older than `delta.logRetentionDuration`
(default 30 days, i.e. ~2.6 million files). `ensure_log_retention` sets the lander's shorter retention on the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.streaming.reports import open_table

DEFAULT_COMPACT_INTERVAL_S = 300.0
DEFAULT_COMPACT_TARGET_BYTES = 32 << 20
# Long enough for the report sensor to read every landing after its last reported version across a weekend of
# Dagster downtime; one commit a second keeps ~172,800 commit files (plus one checkpoint per 100) at most.
DEFAULT_LOG_RETENTION_HOURS = 48.0
LOG_RETENTION = "delta.logRetentionDuration"
LOG_CLEANUP = "delta.enableExpiredLogCleanup"


def compact_dates(
    ref: DeltaTableRef,
    dates: Iterable[date],
    target_bytes: int,
    *,
    before_commit: Callable[[date], None] | None = None,
) -> dict[str, int]:
    """Bin-pack the small files of each `date` partition into files of about `target_bytes`: one commit per date
    with something to merge. Returns files removed and added, and commits made.

    Every date is planned on the snapshot opened at the start; `before_commit(day)` runs between that snapshot and
    the date's commit (a test seam for the race with the hourly replace)."""
    out = {"files_removed": 0, "files_added": 0, "commits": 0}
    table = open_table(ref)
    if table is None:
        return out
    for day in sorted(set(dates)):
        if before_commit is not None:
            before_commit(day)
        metrics: dict[str, Any] = table.optimize.compact(
            partition_filters=[("date", "=", day.isoformat())], target_size=target_bytes
        )
        removed = int(metrics.get("numFilesRemoved", 0))
        out["files_removed"] += removed
        out["files_added"] += int(metrics.get("numFilesAdded", 0))
        out["commits"] += removed > 0
    return out


def log_retention_interval(hours: float) -> str:
    """`hours` as a Delta interval ("interval 172800 seconds")."""
    return f"interval {round(hours * 3600)} seconds"


def ensure_log_retention(ref: DeltaTableRef, hours: float) -> bool:
    """Give the table a log retention of `hours` with expired-log cleanup on (one metadata commit, only when it
    differs). False when the table does not exist yet."""
    table = open_table(ref)
    if table is None:
        return False
    want = {LOG_RETENTION: log_retention_interval(hours), LOG_CLEANUP: "true"}
    have = table.metadata().configuration
    if any(have.get(k) != v for k, v in want.items()):
        table.alter.set_table_properties(want)
    return True
