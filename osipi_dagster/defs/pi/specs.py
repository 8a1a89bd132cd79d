"""What every PI asset declares: key prefix, group, kinds and pool; daily partitions with their backfill policy; the
freshness windows of daily snapshots.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from osipi_dagster.defs.pi.names import GROUP, KEY_PREFIX, KINDS, POOL
from osipi_dagster.defs.pi.partitions import daily_partitions

PI_ASSET: dict[str, Any] = {"key_prefix": KEY_PREFIX, "group_name": GROUP, "kinds": KINDS, "pool": POOL}
DAILY_ASSET: dict[str, Any] = {
    **PI_ASSET,
    "partitions_def": daily_partitions,
    "backfill_policy": dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
}

# Dimension snapshots and event frames are refreshed daily (00:15 / 00:30 UTC): warn when a day was missed.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=25)
)
