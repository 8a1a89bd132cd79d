"""Checks that span the PI assets: schema drift (from each materialization's dagster/column_schema) and the
partition-aware freshness of pi_timeseries (the latest closed hour present by its deadline), with its sensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from osipi_dagster.defs.pi.names import KEY_PREFIX, TIMESERIES_KEY
from osipi_dagster.defs.pi.partitions import TAG_SHARDS
from osipi_dagster.lib.landing.tables import TABLES

# The hour H closes at H+1:00, the schedule materializes it at H+1:10; by H+1:40 it must be there. The time-window
# FreshnessPolicy on the asset only looks at the last materialization of any partition; this check asks for the
# specific latest closed hour, so a backfill of old hours cannot make a stalled hourly feed look fresh.
TIMESERIES_DEADLINE_CRON = "40 * * * *"


def build_quality_checks(
    key_prefix: Sequence[str] = (KEY_PREFIX,),
    sensor_name: str = "pi_freshness_checks_sensor",
    tag_shards: int = 1,
) -> tuple[list[dg.AssetChecksDefinition], list[dg.AssetChecksDefinition], dg.SensorDefinition]:
    """One connection's schema-drift checks, its pi_timeseries partition freshness checks and their sensor.

    Dagster's time-partition freshness check accepts only time-window partitions: with tag_shards > 1 (hour ×
    shard partitions) it would fail every run that includes it, so a sharded connection has none (the asset's
    FreshnessPolicy still applies)."""
    # Every PI asset reports dagster/column_schema. A changed schema is WARN: additive evolution is legitimate
    # (the writer merges columns), but consumers should hear about it.
    schema = dg.build_column_schema_change_checks(
        assets=[dg.AssetKey([*key_prefix, table]) for table in TABLES], severity=dg.AssetCheckSeverity.WARN
    )
    freshness = (
        dg.build_time_partition_freshness_checks(
            assets=[dg.AssetKey([*key_prefix, TIMESERIES_KEY.path[-1]])],
            deadline_cron=TIMESERIES_DEADLINE_CRON,
            timezone="UTC",
            severity=dg.AssetCheckSeverity.ERROR,
        )
        if tag_shards == 1
        else []
    )
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness,
        minimum_interval_seconds=300,
        name=sensor_name,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return list(schema), list(freshness), sensor


schema_change_checks, timeseries_freshness_checks, freshness_checks_sensor = build_quality_checks(
    tag_shards=TAG_SHARDS
)


@dg.definitions
def quality_checks() -> dg.Definitions:
    return dg.Definitions(
        asset_checks=[*schema_change_checks, *timeseries_freshness_checks], sensors=[freshness_checks_sensor]
    )
