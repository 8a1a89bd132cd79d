"""Checks on streamed data, declared on a connection's stream asset (the environment's: pi/pi_timeseries_stream).

The report sensor (reporting.py) evaluates them as landings arrive, without a run; run on demand from the UI they
look at the last hour (unique keys) and the last closed hour (coverage against the archive).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from osipi_dagster.defs.streaming import reporting
from osipi_dagster.defs.streaming.names import SiteLike, StreamNames
from osipi_dagster.lib.streaming.landing import TIMESERIES_TABLE
from osipi_dagster.lib.streaming.reports import duplicate_keys, open_table


def _result(evaluation: dg.AssetCheckEvaluation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        metadata=dict(evaluation.metadata),
        description=evaluation.description,
    )


def stream_checks(site: SiteLike | None = None) -> list[dg.AssetChecksDefinition]:
    """The connection's two checks on streamed data: unique keys, and completeness against the archive."""
    names = StreamNames.of(site)

    @dg.asset_check(
        asset=names.key,
        name=reporting.UNIQUE_KEYS_CHECK,
        description="No (web_id, timestamp, ordinal) twice in pi_timeseries over what was just streamed (the report "
        "sensor checks each tick's landings; on demand: the last hour).",
        required_resource_keys={names.lake_key},
    )
    def unique_keys(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        ref = getattr(context.resources, names.lake_key).get_lake().table(TIMESERIES_TABLE)
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
        asset=names.key,
        name=reporting.COVERAGE_CHECK,
        description="Once an hour has closed: per subscribed stream, the lake's good values in the hour (streamed, "
        "or recorded after the archive replaced them) are at least PI's archive Count; fewer is a gap. On demand: "
        "the last closed hour.",
        required_resource_keys={names.lake_key, names.pi_key, names.spool_key},
    )
    def complete_vs_archive(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        lake, pi = getattr(context.resources, names.lake_key), getattr(context.resources, names.pi_key)
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        web_ids = getattr(context.resources, names.spool_key).reader().watermarks()["web_id"].to_list()
        ref = lake.get_lake().table(TIMESERIES_TABLE)
        return _result(reporting.coverage_evaluation(ref, pi, web_ids, hour, names.key))

    return [unique_keys, complete_vs_archive]


stream_unique_keys, stream_complete_vs_archive = stream_checks()
