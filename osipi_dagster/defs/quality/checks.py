"""Checks that span the PI assets: schema drift (from each materialization's dagster/column_schema) and the
partition-aware freshness of pi_timeseries (the latest closed hour present by its deadline), with its sensor.
"""

from __future__ import annotations

import dagster as dg

from osipi_dagster.defs.pi.names import TIMESERIES_KEY, asset_key
from osipi_dagster.lib.landing.tables import TABLES

# Every PI asset reports dagster/column_schema. A changed schema is WARN: additive evolution is legitimate
# (the writer merges columns), but consumers should hear about it.
SCHEMA_CHECKED = [asset_key(table) for table in TABLES]
schema_change_checks = dg.build_column_schema_change_checks(
    assets=SCHEMA_CHECKED, severity=dg.AssetCheckSeverity.WARN
)

# The hour H closes at H+1:00, the schedule materializes it at H+1:10; by H+1:40 it must be there. The time-window
# FreshnessPolicy on the asset only looks at the last materialization of any partition; this check asks for the
# specific latest closed hour, so a backfill of old hours cannot make a stalled hourly feed look fresh.
TIMESERIES_DEADLINE_CRON = "40 * * * *"
timeseries_freshness_checks = dg.build_time_partition_freshness_checks(
    assets=[TIMESERIES_KEY],
    deadline_cron=TIMESERIES_DEADLINE_CRON,
    timezone="UTC",
    severity=dg.AssetCheckSeverity.ERROR,
)
freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=timeseries_freshness_checks,
    minimum_interval_seconds=300,
    name="pi_freshness_checks_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)


@dg.definitions
def quality_checks() -> dg.Definitions:
    return dg.Definitions(
        asset_checks=[*schema_change_checks, *timeseries_freshness_checks], sensors=[freshness_checks_sensor]
    )
