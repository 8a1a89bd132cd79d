"""Derived-read assets (opt-in): PI's interpolated values and summaries per interval, one UTC hour per partition.

`build_derived_assets` makes them for one connection (resource keys, key prefix, group, settings); with the
environment's settings (OSIPI_DERIVED_*) they exist only when an interval is set. Each run replaces its window in
one commit (idempotent reruns, backfill ranges), checks completeness and the good share, and on a repair run (the
REPAIR_TAG a late-data sensor sets) records what changed. Boundary rules: osipi_dagster/lib/landing/derived.py.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from osipi_dagster.defs.pi.derived_late_data import build_derived_late_data_sensor
from osipi_dagster.defs.pi.jobs import run_tags
from osipi_dagster.defs.pi.names import (
    GROUP,
    INTERPOLATED_TABLE,
    KEY_PREFIX,
    KINDS,
    POINTS_KEY,
    POOL,
    REPAIR_REASON_TAG,
    REPAIR_TAG,
    SUMMARY_TABLE,
)
from osipi_dagster.defs.pi.partitions import HOURS_PER_BACKFILL_RUN, hourly_partitions, window
from osipi_dagster.defs.pi.reporting import failures, table_metadata, total_rows, write_result_metadata
from osipi_dagster.defs.pi.site import DEFAULT_SITE
from osipi_dagster.lib.landing.derived import (
    SCHEMAS,
    WINDOW_COLUMN,
    DerivedRead,
    DerivedStats,
    changed_rows,
    derived_frames,
    expected_rows,
    window_scan,
)
from osipi_dagster.lib.landing.recorded import owned_rows, scoped
from osipi_dagster.lib.landing.selection import tags_to_extract
from osipi_dagster.lib.settings import DerivedSettings, env_settings

COMPLETE, GOOD_SHARE = "complete", "good_share"
DERIVED_JOB_SUFFIX = "derived_job"
# Two minutes after the recorded-values schedule (HOURLY_LAG_MINUTES): late values have had the same time to land.
DERIVED_LAG_MINUTES = 12
DESCRIPTIONS = {
    INTERPOLATED_TABLE: "PI's interpolated values every {interval} of the catalogued tags matching PI_TAG_FILTER "
    "(OSIPI_DERIVED_INTERPOLATED_INTERVAL), one UTC hour per partition, read from PI.",
    SUMMARY_TABLE: "PI's {basis} summaries ({types}) per {interval} of the numeric catalogued tags matching "
    "PI_TAG_FILTER (OSIPI_DERIVED_SUMMARY_*), one UTC hour per partition, read from PI.",
}


def derived_settings_from_env(environ: Mapping[str, str] | None = None) -> DerivedSettings:
    """OSIPI_DERIVED_* as validated settings (the defaults, i.e. off, when unset)."""
    return DerivedSettings.model_validate(env_settings(environ).get("derived", {}))


def derived_reads(settings: DerivedSettings) -> list[DerivedRead]:
    """The reads the settings enable: none, one or both."""
    reads = []
    if settings.interpolated_span is not None:
        reads.append(
            DerivedRead(INTERPOLATED_TABLE, settings.interpolated_span, settings.interpolated_interval or "")
        )
    if settings.summary_span is not None:
        reads.append(
            DerivedRead(
                SUMMARY_TABLE,
                settings.summary_span,
                settings.summary_interval or "",
                tuple(settings.summary_types),
                settings.calculation_basis,
            )
        )
    return reads


def build_derived_assets(
    settings: DerivedSettings | None = None,
    *,
    key_prefix: str = KEY_PREFIX,
    group: str = GROUP,
    pi_resource_key: str = "pi",
    lake_resource_key: str = "lake",
    pool: str = POOL,
    points_key: dg.AssetKey = POINTS_KEY,
) -> list[dg.AssetsDefinition]:
    """The derived-read assets of one connection; none when `settings` (default: the environment's) enable none."""
    settings = derived_settings_from_env() if settings is None else settings
    return [
        derived_asset(read, key_prefix, group, pi_resource_key, lake_resource_key, pool, points_key)
        for read in derived_reads(settings)
    ]


def derived_asset(
    read: DerivedRead,
    key_prefix: str,
    group: str,
    pi_key: str,
    lake_key: str,
    pool: str,
    points_key: dg.AssetKey,
) -> dg.AssetsDefinition:
    key = dg.AssetKey([key_prefix, read.table])
    specs = [
        dg.AssetCheckSpec(
            COMPLETE, asset=key, description="every selected tag has every interval of the window"
        ),
        dg.AssetCheckSpec(
            GOOD_SHARE, asset=key, description="share of Good values >= OSIPI_QUALITY_MIN_GOOD_SHARE"
        ),
    ]
    description = DESCRIPTIONS[read.table].format(
        interval=read.interval, basis=read.calculation_basis, types=", ".join(read.summary_types)
    )

    @dg.asset(
        key=key,
        group_name=group,
        kinds=KINDS,
        pool=pool,
        partitions_def=hourly_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=HOURS_PER_BACKFILL_RUN),
        deps=[points_key],
        required_resource_keys={pi_key, lake_key},
        check_specs=specs,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
        ),
        description=description,
    )
    def _derived(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return land_derived(
            context, read, getattr(context.resources, pi_key), getattr(context.resources, lake_key)
        )

    return _derived


def land_derived(context: dg.AssetExecutionContext, read: DerivedRead, pi, lake) -> dg.MaterializeResult:
    """One run: the window's tags, PI's derived values of the window in one commit, checks and metadata."""
    start, end = window(context)
    the_lake = lake.get_lake()
    tag_filter = pi.settings().tag_filter
    with failures():
        tags = tags_to_extract(the_lake, tag_filter)
    scope = owned_rows(tags["web_id"].to_list(), tag_filter)
    ref = the_lake.table(read.table)
    repair = context.run.tags.get(REPAIR_TAG)
    before = scoped(window_scan(ref, read.table, start, end), scope).collect() if repair else None
    ingested_at = datetime.now(UTC)
    attempts: list[DerivedStats] = []
    with pi.get_client() as client:

        def extract():
            attempts[:] = [DerivedStats()]
            return derived_frames(
                client, read, tags, start=start, end=end, ingested_at=ingested_at, stats=attempts[0]
            )

        result = ref.replace_window(
            extract,
            column=WINDOW_COLUMN[read.table],
            start=start,
            end=end,
            partition_by=["date"],
            extra_predicate=scope,
        )
    stats = attempts[-1]
    extra: dict[str, object] = {}
    if before is not None:
        after = scoped(window_scan(ref, read.table, start, end), scope).collect()
        extra = {"repair": repair, "repair_reason": context.run.tags.get(REPAIR_REASON_TAG, "")}
        extra.update(changed_rows(before, after, read.table))
        context.log.info(f"repair of {read.table} {start:%Y-%m-%dT%H:%M}..{end:%H:%M}Z: {extra}")
    asked = read.eligible(tags)
    min_good = pi.quality.min_good_share
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, stats.rows),
            preview=stats.preview if stats.preview is not None else pl.DataFrame(schema=SCHEMAS[read.table]),
            **{"dagster/partition_row_count": dg.MetadataValue.int(stats.rows)},
            tags_requested=asked.height,
            values=stats.rows,
            interval=read.interval,
            window_start=dg.MetadataValue.timestamp(start),
            window_end=dg.MetadataValue.timestamp(end),
            **extra,
            **write_result_metadata(result),
        ),
        check_results=check_results(read, asked["web_id"].to_list(), stats, start, end, min_good),
    )


def check_results(
    read: DerivedRead, ids: list[str], stats: DerivedStats, start: datetime, end: datetime, min_good: float
) -> list[dg.AssetCheckResult]:
    """Completeness (every tag, every interval) and the share of Good values of the window."""
    want = expected_rows(read, start, end)
    short = sorted(w for w in ids if stats.per_tag.get(w, 0) != want)
    share = stats.good / stats.rows if stats.rows else 1.0
    return [
        dg.AssetCheckResult(
            check_name=COMPLETE,
            passed=not short,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows_per_tag": want,
                "tags_incomplete": len(short),
                "sample": dg.MetadataValue.json(short[:20]),
            },
        ),
        dg.AssetCheckResult(
            check_name=GOOD_SHARE,
            passed=share >= min_good,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"good_share": round(share, 4), "min_good_share": min_good},
        ),
    ]


def build_derived_defs(
    settings: DerivedSettings | None = None,
    *,
    key_prefix: str = KEY_PREFIX,
    group: str = GROUP,
    pi_resource_key: str = "pi",
    lake_resource_key: str = "lake",
    pool: str = POOL,
    points_key: dg.AssetKey = POINTS_KEY,
    name_prefix: str = KEY_PREFIX,
    tags: Mapping[str, str] | None = None,
) -> dg.Definitions:
    """One connection's derived reads with their job, hourly schedule and late-data sensor (empty when off); the
    job's runs carry `tags` (default: the environment connection's `run_tags`)."""
    settings = derived_settings_from_env() if settings is None else settings
    reads = derived_reads(settings)
    assets = build_derived_assets(
        settings,
        key_prefix=key_prefix,
        group=group,
        pi_resource_key=pi_resource_key,
        lake_resource_key=lake_resource_key,
        pool=pool,
        points_key=points_key,
    )
    if not assets:
        return dg.Definitions()
    job = dg.define_asset_job(
        f"{name_prefix}_{DERIVED_JOB_SUFFIX}",
        selection=dg.AssetSelection.assets(*assets),
        description="Derived reads (interpolated values, summaries) for UTC hours.",
        tags=dict(run_tags(DEFAULT_SITE) if tags is None else tags),
    )
    schedule = dg.build_schedule_from_partitioned_job(
        job,
        name=f"{name_prefix}_derived_hourly_schedule",
        description="Derived reads of the hour that just closed, DERIVED_LAG_MINUTES after it closes.",
        minute_of_hour=DERIVED_LAG_MINUTES,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    sensor = build_derived_late_data_sensor(
        list(zip(reads, assets, strict=True)), job, pi_resource_key, lake_resource_key, name_prefix
    )
    return dg.Definitions(assets=assets, jobs=[job], schedules=[schedule], sensors=[sensor])


@dg.definitions
def derived() -> dg.Definitions:
    """The environment connection's derived reads (nothing unless OSIPI_DERIVED_* enable them)."""
    return build_derived_defs()
