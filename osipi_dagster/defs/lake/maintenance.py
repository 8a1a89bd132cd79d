"""Weekly Delta maintenance of every PI table: compaction (z-order for time series) and vacuum.

Results are recorded as AssetObservations on the table's asset, so file counts show up on each asset's page.
"""

import dagster as dg
from pydantic import Field

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.names import asset_key
from osipi_dagster.lib.landing.densities import DENSITIES_TABLE
from osipi_dagster.lib.landing.tables import TABLES, TIMESERIES_TABLE

# table -> z-order columns. Time series are read per tag and time range, so clustering on (web_id, timestamp) lets
# readers skip most files; the small dimension and event tables only need their small files compacted.
MAINTAINED_TABLES: dict[str, list[str]] = {
    TIMESERIES_TABLE: ["web_id", "timestamp"],
    **{table: [] for table in TABLES if table != TIMESERIES_TABLE},
    DENSITIES_TABLE: [],  # the read plan's tag densities: small, rewritten when densities change; not an asset
}
# A week of time travel: a rerun or a reader that started before the vacuum still finds its files.
RETENTION_HOURS = 168


class LakeMaintenanceConfig(dg.Config):
    tables: list[str] = Field(default_factory=lambda: list(MAINTAINED_TABLES))
    retention_hours: int = RETENTION_HOURS
    vacuum_dry_run: bool = False


@dg.op(
    description="Compact/z-order then vacuum each PI Delta table; tables not written yet are skipped.",
    tags={"dagster/kind/deltalake": ""},
)
def maintain_lake_tables(
    context: dg.OpExecutionContext, config: LakeMaintenanceConfig, lake: LakeResource
) -> dict[str, dict[str, object]]:
    the_lake = lake.get_lake()
    unknown = sorted(set(config.tables) - set(MAINTAINED_TABLES))
    if unknown:
        raise dg.Failure(f"Unknown tables {unknown}: choose from {sorted(MAINTAINED_TABLES)}.")
    summary: dict[str, dict[str, object]] = {}
    for table in config.tables:
        ref = the_lake.table(table)
        if not ref.exists():
            context.log.info(f"{table}: no Delta table at {ref.uri} yet, skipped")
            continue
        before = ref.table_stats()
        optimized = ref.optimize(z_order=MAINTAINED_TABLES[table] or None)
        vacuumed = ref.vacuum(retention_hours=config.retention_hours, dry_run=config.vacuum_dry_run)
        after = ref.table_stats()
        figures: dict[str, object] = {
            "files_before": before["files"],
            "files_after": after["files"],
            "files_added": int(optimized.get("numFilesAdded", 0)),
            "files_removed": int(optimized.get("numFilesRemoved", 0)),
            "files_vacuumed": int(vacuumed["files_deleted"]),
            "z_order": ", ".join(MAINTAINED_TABLES[table]) or "none (compaction)",
            "version": after["version"],
            "size_bytes": after["size_bytes"],
        }
        summary[table] = figures
        context.log.info(f"{table}: {figures}")
        if table in TABLES:
            context.log_event(
                dg.AssetObservation(asset_key=asset_key(table), metadata={"maintenance": "weekly", **figures})
            )
    return summary


@dg.job(description="Optimize (z-order pi_timeseries on web_id, timestamp) and vacuum every PI Delta table.")
def lake_maintenance_job() -> None:
    maintain_lake_tables()


lake_maintenance_weekly_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_weekly_schedule",
    job=lake_maintenance_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    description="Sunday 03:00 UTC, a quiet hour for PI and the lake.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
