"""Partition definitions for PI data: UTC hours for recorded values, UTC days for event frames.

The first partition comes from OSIPI_START_DATE, read when the code location loads (default 2024-01-01).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date

import dagster as dg

from osipi_dagster.lib.settings import parse_start_date


def start_date_from_env(environ: Mapping[str, str] | None = None) -> date:
    """OSIPI_START_DATE as a date; the documented default when unset.

    Partition definitions are part of the code location's shape, so they are fixed at load time rather than run
    time: changing OSIPI_START_DATE means reloading the code location (the UI "Reload" button or a restart).
    """
    env = os.environ if environ is None else environ
    value = env.get("OSIPI_START_DATE", "").strip()
    return parse_start_date(value or None)


START_DATE = start_date_from_env()

# Everything is UTC: PI Web API speaks UTC, and mixing zones across partition mappings is a known Dagster pitfall.
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=START_DATE.strftime("%Y-%m-%d-00:00"), timezone="UTC"
)
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")

# A backfill of N hours runs as ceil(N / 24) runs, each writing its whole range in one Delta commit.
HOURS_PER_BACKFILL_RUN = 24
