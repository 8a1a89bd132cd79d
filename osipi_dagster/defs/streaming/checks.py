"""Checks on streamed data, declared on pi/pi_timeseries_stream.

The report sensor (reporting.py) evaluates them as landings arrive, without a run; run on demand from the UI they
look at the last hour (unique keys) and the last closed hour (coverage against the archive).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.streaming import reporting
from osipi_dagster.defs.streaming.assets import STREAM_KEY
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.streaming.landing import TIMESERIES_TABLE
from osipi_dagster.lib.streaming.reports import duplicate_keys, open_table


def _result(evaluation: dg.AssetCheckEvaluation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        metadata=dict(evaluation.metadata),
        description=evaluation.description,
    )


@dg.asset_check(
    asset=STREAM_KEY,
    name=reporting.UNIQUE_KEYS_CHECK,
    description="No (web_id, timestamp, ordinal) twice in pi_timeseries over what was just streamed (the report "
    "sensor checks each tick's landings; on demand: the last hour).",
)
def stream_unique_keys(lake: LakeResource) -> dg.AssetCheckResult:
    ref = lake.get_lake().table(TIMESERIES_TABLE)
    end = datetime.now(UTC)
    start = end - timedelta(hours=1)
    table = open_table(ref)
    rows, dupes = duplicate_keys(table, start, end) if table is not None else (0, None)
    duplicated = 0 if dupes is None else dupes.height
    return dg.AssetCheckResult(
        passed=duplicated == 0,
        metadata={
            "from": dg.MetadataValue.timestamp(start),
            "rows_checked": rows,
            "duplicated_keys": duplicated,
        },
    )


@dg.asset_check(
    asset=STREAM_KEY,
    name=reporting.COVERAGE_CHECK,
    description="Once an hour has closed: per subscribed stream, the lake's good values in the hour (streamed, or "
    "recorded after the archive replaced them) are at least PI's archive Count; fewer is a gap. On demand: the "
    "last closed hour.",
)
def stream_complete_vs_archive(
    lake: LakeResource, pi: PIWebAPIResource, spool: SpoolResource
) -> dg.AssetCheckResult:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    web_ids = spool.reader().watermarks()["web_id"].to_list()
    ref = lake.get_lake().table(TIMESERIES_TABLE)
    return _result(reporting.coverage_evaluation(ref, pi, web_ids, hour))
