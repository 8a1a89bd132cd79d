"""Partition definitions for PI data: UTC hours for recorded values (× tag shards when a connection has more than
one), UTC days for event frames.

The first partition is the contract's `start_date` (OSIPI_START_DATE), and the shard count its `tag_shards`
(OSIPI_TAG_SHARDS), both read when the code location loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import dagster as dg

from osipi_dagster.lib.landing.shards import parse_shard, shard_keys
from osipi_dagster.lib.settings import DEFAULT_START_DATE, env_settings
from osipi_dagster.lib.settings.model import DEFAULT_TAG_SHARDS

# The dimensions of a sharded connection's pi_timeseries partitions; a key reads "2024-01-01-05:00|3".
HOUR_DIMENSION, SHARD_DIMENSION = "hour", "shard"


def start_date_from_env(environ: Mapping[str, str] | None = None) -> date:
    """OSIPI_START_DATE as a date; the documented default when unset.

    Partition definitions are part of the code location's shape, so they are fixed at load time rather than run
    time: changing OSIPI_START_DATE means reloading the code location (the UI "Reload" button or a restart).
    """
    return env_settings(environ).get("start_date", DEFAULT_START_DATE)


def tag_shards_from_env(environ: Mapping[str, str] | None = None) -> int:
    """OSIPI_TAG_SHARDS (1 when unset): like the start date, part of the code location's shape."""
    return env_settings(environ).get("tag_shards", DEFAULT_TAG_SHARDS)


def hourly(start: date) -> dg.HourlyPartitionsDefinition:
    # Everything is UTC: PI Web API speaks UTC, and mixing zones across partition mappings is a known Dagster pitfall.
    return dg.HourlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d-00:00"), timezone="UTC")


def daily(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def sharded_hourly(hours: dg.HourlyPartitionsDefinition, shards: int) -> dg.MultiPartitionsDefinition:
    """Hour × shard: each cell is one run's unit of work (see docs/architecture.md, "Tag shards")."""
    return dg.MultiPartitionsDefinition(
        {HOUR_DIMENSION: hours, SHARD_DIMENSION: dg.StaticPartitionsDefinition(shard_keys(shards))}
    )


def timeseries_partitions(
    hours: dg.HourlyPartitionsDefinition, shards: int
) -> dg.HourlyPartitionsDefinition | dg.MultiPartitionsDefinition:
    """pi_timeseries' partitions: the hours unsharded (today's keys), hour × shard otherwise."""
    return hours if shards == 1 else sharded_hourly(hours, shards)


def timeseries_backfill(shards: int) -> dg.BackfillPolicy:
    """Unsharded: a backfill run lands HOURS_PER_BACKFILL_RUN hours in one commit. Sharded: one run per hour ×
    shard, so the run queue spreads the cells over processes and machines."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=HOURS_PER_BACKFILL_RUN if shards == 1 else 1)


START_DATE = start_date_from_env()
TAG_SHARDS = tag_shards_from_env()
hourly_partitions = hourly(START_DATE)
daily_partitions = daily(START_DATE)

# A backfill of N hours runs as ceil(N / 24) runs, each writing its whole range in one Delta commit.
HOURS_PER_BACKFILL_RUN = 24


def window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    """The run's partition window (a backfill run's whole range) in stdlib UTC."""
    span = context.partition_time_window
    return (
        datetime.fromtimestamp(span.start.timestamp(), tz=UTC),
        datetime.fromtimestamp(span.end.timestamp(), tz=UTC),
    )


def run_shard(context: dg.AssetExecutionContext, shards: int) -> str | None:
    """The shard key of a sharded run ("0".."N-1"), None unsharded. A run covers one shard: a range of keys
    (a manual launch) must stay within one shard."""
    if shards == 1:
        return None
    if context.has_partition_key_range:
        first, last = context.partition_key_range.start, context.partition_key_range.end
    else:
        first = last = context.partition_key
    # Multi-partition keys join their dimensions in name order: "<hour>|<shard>".
    lo, hi = (str(k).split("|")[-1] if "|" in str(k) else None for k in (first, last))
    if lo is None or lo != hi:
        raise dg.Failure(
            f"A pi_timeseries run lands one shard: partitions {first}..{last} span shards {lo}..{hi}. Launch one "
            "run per hour × shard (the asset's backfill policy does)."
        )
    parse_shard(lo, shards)
    return lo
