"""Compaction of the dates the lander writes: a landing a second adds a small file a second to each touched date.

The lander calls `compact_dates` every `compact_interval_s` for the dates it landed since the last compaction, so a
date holds a bounded number of files between the weekly z-order (defs/lake/maintenance.py) instead of 3,600 an hour.
Files already at `target_bytes` are left alone (delta-rs bins only smaller files), so each pass rewrites at most
about one target's worth of data per date. The commit carries no report, so Dagster's report sensor skips it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.streaming.reports import open_table

DEFAULT_COMPACT_INTERVAL_S = 300.0
DEFAULT_COMPACT_TARGET_BYTES = 32 << 20


def compact_dates(ref: DeltaTableRef, dates: Iterable[date], target_bytes: int) -> dict[str, int]:
    """Bin-pack the small files of each `date` partition into files of about `target_bytes`: one commit per date
    with something to merge. Returns files removed and added, and commits made."""
    out = {"files_removed": 0, "files_added": 0, "commits": 0}
    table = open_table(ref)
    if table is None:
        return out
    for day in sorted(set(dates)):
        metrics: dict[str, Any] = table.optimize.compact(
            partition_filters=[("date", "=", day.isoformat())], target_size=target_bytes
        )
        removed = int(metrics.get("numFilesRemoved", 0))
        out["files_removed"] += removed
        out["files_added"] += int(metrics.get("numFilesAdded", 0))
        out["commits"] += removed > 0
    return out
