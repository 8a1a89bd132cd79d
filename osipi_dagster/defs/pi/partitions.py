"""Partition definitions for PI data: UTC hours for recorded values, UTC days for event frames.

The first partition is the contract's `start_date` (OSIPI_START_DATE), read when the code location loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import dagster as dg

from osipi_dagster.lib.settings import DEFAULT_START_DATE, env_settings


def start_date_from_env(environ: Mapping[str, str] | None = None) -> date:
    """OSIPI_START_DATE as a date; the documented default when unset.

    Partition definitions are part of the code location's shape, so they are fixed at load time rather than run
    time: changing OSIPI_START_DATE means reloading the code location (the UI "Reload" button or a restart).
    """
    return env_settings(environ).get("start_date", DEFAULT_START_DATE)


def hourly(start: date) -> dg.HourlyPartitionsDefinition:
    # Everything is UTC: PI Web API speaks UTC, and mixing zones across partition mappings is a known Dagster pitfall.
    return dg.HourlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d-00:00"), timezone="UTC")


def daily(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


START_DATE = start_date_from_env()
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
