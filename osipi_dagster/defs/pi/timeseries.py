"""The recorded-values asset: UTC-hour partitions streamed page by page from PI into one Delta commit per run,
checked while they stream, and diffed against what they replace when the late-data sensor asks for a repair.

`land_window` is the body, in named steps: plan the run, pin what a repair replaces, land the window, report.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi import checks
from osipi_dagster.defs.pi.names import POINTS_KEY, REPAIR_REASON_TAG, REPAIR_TAG
from osipi_dagster.defs.pi.partitions import run_shard, window
from osipi_dagster.defs.pi.reporting import (
    failures,
    table_metadata,
    time_range,
    total_rows,
    write_result_metadata,
)
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site
from osipi_dagster.lib.lake import DeltaTableRef, Lake, LakeError, WriteResult
from osipi_dagster.lib.landing.densities import (
    DENSITIES_TABLE,
    observed_densities,
    remember_densities,
    stored_densities,
)
from osipi_dagster.lib.landing.progress import Progress
from osipi_dagster.lib.landing.recorded import (
    LandingStats,
    Scope,
    hourly_pages,
    land_values,
    owned_rows,
    recorded_scan,
    scoped,
)
from osipi_dagster.lib.landing.repair import repair_diff
from osipi_dagster.lib.landing.selection import tags_to_extract
from osipi_dagster.lib.landing.shards import check_layout, partition_columns, record_layout, tags_of_shard
from osipi_dagster.lib.landing.tables import SHARDED_TIMESERIES_SCHEMA, TIMESERIES_SCHEMA, TIMESERIES_TABLE
from osipi_dagster.lib.quality import (
    HOUR_STATS_SCHEMA,
    DuplicateKeyError,
    HourStatsAccumulator,
    QualityThresholds,
    WindowProfile,
    hour_stats,
)

# Catalogued tags PI no longer knows are listed in the run log up to this many names.
UNKNOWN_SAMPLE = 20


def timeseries_asset(site: Site = DEFAULT_SITE) -> dg.AssetsDefinition:
    """The site's recorded-values asset (key `<prefix>/pi_timeseries`)."""

    @dg.asset(
        **site.asset_kwargs(),
        name=TIMESERIES_TABLE,
        partitions_def=site.timeseries_partitions,
        backfill_policy=site.timeseries_backfill,
        deps=[site.key(POINTS_KEY)],
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
        ),
        check_specs=[site.check(c) for c in checks.TIMESERIES_CHECKS],
        description="Recorded values (every archive event, duplicates kept by ordinal) of the catalogued tags "
        "matching PI_TAG_FILTER, one UTC hour per partition, Delta-partitioned by date"
        + (
            "."
            if site.tag_shards == 1
            else f" and shard: {site.tag_shards} tag shards, one run per hour × shard."
        ),
    )
    def _timeseries(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        pi, lake = site.resources(context)
        try:
            result = land_window(context, pi, lake, site.tag_shards)
        except DuplicateKeyError as err:
            # Yielded (not logged) so the failed blocking check is recorded before the step fails.
            yield checks.duplicate_keys_result(err)
            raise dg.Failure(
                description=str(err),
                metadata={"offending": err.offending, "tags": dg.MetadataValue.json(err.web_ids[:20])},
            ) from err
        yield result

    return _timeseries


pi_timeseries = timeseries_asset()


@dataclass(frozen=True)
class Run:
    """What one run lands: its window (a backfill run's whole range), tags (its shard's), owned rows, and repair
    request; `shard` is None unless the connection has tag_shards > 1."""

    start: datetime
    end: datetime
    tags: pl.DataFrame
    scope: Scope
    repair: str | None
    ingested_at: datetime
    label: str
    shards: int = 1
    shard: str | None = None

    @property
    def ids(self) -> list[str]:
        return self.tags["web_id"].to_list()


@dataclass
class Landed:
    """What landing the window produced: the commit, the stream's figures, PI's counts, calls, unknown tags."""

    result: WriteResult
    stats: LandingStats
    pi_counts: pl.DataFrame | None
    calls: int
    missing: dict[str, object]
    progress: Progress


def land_window(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource, shards: int = 1
) -> dg.MaterializeResult:
    """pi_timeseries' body: stream the run's window (of its shard's tags) from PI into one Delta commit and
    describe it; raises DuplicateKeyError (before the commit) when the stream repeats a key."""
    the_lake = lake.get_lake()
    run = plan_run(context, pi, the_lake, shards)
    ref = the_lake.table(TIMESERIES_TABLE)
    before_version, before = pin_replaced(ref, run)
    landed = land(context, pi, ref, run, the_lake.table(DENSITIES_TABLE))
    report_unknown_tags(context, run, landed.missing)
    context.log.info(
        landed.progress.line() + f"; landed {landed.stats.rows:,} values of {len(landed.stats.web_ids)} tags"
    )
    extra: dict[str, object] = {f"data_age_{k}_s": v for k, v in landed.stats.ages.summary().items()}
    if run.repair and landed.stats.hours is not None and landed.result.version is not None:
        extra.update(report_repair(context, ref, run, before_version, before, landed))
    return describe(ref, run, landed, extra)


def plan_run(context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: Lake, shards: int = 1) -> Run:
    """The run's window, the catalogued tags its filter selects (in its shard), and the rows it owns."""
    start, end = window(context)
    shard = run_shard(context, shards)
    tag_filter = pi.settings().tag_filter
    with failures():
        tags = tags_to_extract(lake, tag_filter)
    if tags.height == 0:
        context.log.warning(f"No current pi_points row matches PI_TAG_FILTER={tag_filter!r}.")
    if shard is not None:
        tags = tags_of_shard(tags, int(shard), shards)
    of_shard = "" if shard is None else f" of shard {shard}/{shards}"
    return Run(
        start=start,
        end=end,
        tags=tags,
        # A run owns the window of its tags only: with a PI_TAG_FILTER, rows of other tags (another filter's job,
        # streamed values of tags outside this one) are neither replaced nor counted in a repair's diff.
        # A shard's run owns its shard's partition only: concurrent shard runs replace disjoint files.
        scope=owned_rows(tags["web_id"].to_list(), tag_filter, shard),
        repair=context.run.tags.get(REPAIR_TAG),
        ingested_at=datetime.now(UTC),
        label=f"pi_timeseries {start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}Z ({tags.height} tags{of_shard})",
        shards=shards,
        shard=shard,
    )


def pin_replaced(ref: DeltaTableRef, run: Run) -> tuple[int | None, pl.DataFrame]:
    """For a repair, the current table version and per (tag, hour) checksums of what the run replaces (an
    aggregation, not the rows), so the row diff later reads exactly what was replaced; nothing otherwise."""
    version = ref.version() if run.repair else None
    if version is None:
        return None, pl.DataFrame(schema=HOUR_STATS_SCHEMA)
    return version, hour_stats(scoped(recorded_scan(ref, run.start, run.end, version), run.scope))


def land(
    context: dg.AssetExecutionContext,
    pi: PIWebAPIResource,
    ref: DeltaTableRef,
    run: Run,
    densities: DeltaTableRef | None = None,
) -> Landed:
    """Stream the window from PI into one Delta commit, then ask PI for its counts of the same window. With a
    `densities` table, the read is planned from the tag densities earlier runs stored there, and this run's are
    stored after the commit."""
    thresholds: QualityThresholds = pi.quality
    known: dict[str, float] = {}
    if densities is not None:
        try:
            known = stored_densities(densities, run.ids)
        except Exception as err:  # a cache: an unreadable table means probing, as on a first run
            context.log.warning(f"{run.label}: stored tag densities not read ({err}); probing instead")
    progress = Progress(context.log.info, run.label)
    attempts: list[LandingStats] = []
    with pi.get_client() as client:
        calls_before = client.stats.http_calls

        def extract() -> Iterator[pl.DataFrame]:
            # Called by the lake writer once per attempt: a lost commit race re-runs the extraction from PI.
            stats = LandingStats(
                profile=WindowProfile(run.tags, thresholds),
                hours=HourStatsAccumulator() if run.repair else None,
            )
            attempts[:] = [stats]
            pages = hourly_pages(client, run.ids, run.start, run.end, progress, known)
            context.log.info(f"{run.label}: {progress.total_pages} pages planned")
            return land_values(
                pages,
                run.tags,
                start=run.start,
                end=run.end,
                ingested_at=run.ingested_at,
                stats=stats,
                shard=run.shard,
            )

        # A table laid out for another shard count would get rows twice or never replaced: stop before reading.
        with failures():
            check_layout(ref, run.shards)
        # One commit for the whole window: a crash (or a duplicate key) before it leaves the previous version of
        # the window intact. A factory, so a lost commit race re-runs the extraction instead of failing.
        result = ref.replace_window(
            extract,
            column="timestamp",
            start=run.start,
            end=run.end,
            partition_by=partition_columns(run.shards),
            extra_predicate=run.scope,
        )
        record_layout(ref, run.shards)
        # Completeness in the same run: PI's own Count per tag (one summary call per stream group) against the
        # good values just landed. Both sides are half-open, [start, end): recorded_counts asks PI with
        # EventWeightedExcludeMostRecentEvent, so a value stamped exactly at `end` (common: scan classes write on
        # whole seconds and minutes) belongs to the next window on both sides. Later data is the late-data sensor's.
        pi_counts = client.recorded_counts(run.ids, run.start, run.end) if run.ids else None
        calls = int(client.stats.http_calls - calls_before)
        # Catalogued tags PI no longer knows (deleted since the last catalogue run): skipped, never silently.
        missing = dict(client.stats.missing_web_ids)
    if densities is not None:
        keep_densities(context, densities, run, attempts[-1], known, missing)
    return Landed(result, attempts[-1], pi_counts, calls, missing, progress)


def keep_densities(
    context: dg.AssetExecutionContext,
    densities: DeltaTableRef,
    run: Run,
    stats: LandingStats,
    known: dict[str, float],
    missing: dict[str, object],
) -> None:
    """Store the densities this run observed (tags PI no longer knows left out) for the next run's read plan. A
    cache: failing to write it is logged, not a failed run."""
    counts = stats.profile.per_tag().filter(
        pl.col("web_id").is_in(run.ids) & ~pl.col("web_id").is_in(list(missing))
    )
    try:
        remember_densities(densities, observed_densities(counts, run.start, run.end, run.ingested_at), known)
    except LakeError as err:
        context.log.warning(f"{run.label}: tag densities not stored for the next run: {err}")


def report_unknown_tags(context: dg.AssetExecutionContext, run: Run, missing: dict[str, object]) -> None:
    if not missing:
        return
    names = dict(run.tags.select("web_id", "tag").iter_rows())
    gone = sorted(names.get(w) or w for w in missing)
    context.log.warning(
        f"{run.label}: {len(gone)} catalogued tags are unknown to PI Web API and were skipped "
        f"(deleted or renamed since the last pi_points run?): {', '.join(gone[:UNKNOWN_SAMPLE])}"
    )


def report_repair(
    context: dg.AssetExecutionContext,
    ref: DeltaTableRef,
    run: Run,
    before_version: int | None,
    before: pl.DataFrame,
    landed: Landed,
) -> dict[str, object]:
    """A repair's row diff, logged and recorded as an observation of the partition; its metadata."""
    assert landed.stats.hours is not None and landed.result.version is not None
    diff = repair_diff(
        ref,
        start=run.start,
        end=run.end,
        before_version=before_version,
        before=before,
        after_version=landed.result.version,
        after=landed.stats.hours.result(),
        ingested_at=run.ingested_at,
    )
    metadata: dict[str, object] = {
        "repair": run.repair,
        "repair_reason": context.run.tags.get(REPAIR_REASON_TAG, ""),
        "rows_inserted": diff.inserted,
        "rows_deleted": diff.deleted,
        "rows_changed": diff.changed,
        "rows_unchanged": diff.unchanged,
        "tags_changed": dg.MetadataValue.json(diff.tags_changed),
    }
    if diff.lateness_p50_s is not None:
        metadata["late_rows_lateness_p50_s"] = round(diff.lateness_p50_s, 3)
        metadata["late_rows_lateness_max_s"] = round(diff.lateness_max_s or 0.0, 3)
    context.log.info(
        f"repair of {run.label}: {diff.inserted} rows inserted, {diff.deleted} deleted, {diff.changed} changed "
        f"in {len(diff.tags_changed)} tags"
    )
    keys = context.partition_keys
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key, partition=keys[0] if len(keys) == 1 else None, metadata=metadata
        )
    )
    return metadata


def describe(ref: DeltaTableRef, run: Run, landed: Landed, extra: dict[str, object]) -> dg.MaterializeResult:
    """The materialization: table metadata, the window's figures, and every check result of the window."""
    stats, progress = landed.stats, landed.progress
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, stats.rows),
            preview=stats.preview
            if stats.preview is not None
            else pl.DataFrame(schema=TIMESERIES_SCHEMA if run.shard is None else SHARDED_TIMESERIES_SCHEMA),
            **{"dagster/partition_row_count": dg.MetadataValue.int(stats.rows)},
            tags_requested=run.tags.height,
            tags_with_values=len(stats.web_ids),
            values=stats.rows,
            **({} if run.shard is None else {"shard": run.shard, "tag_shards": run.shards}),
            window_start=dg.MetadataValue.timestamp(run.start),
            window_end=dg.MetadataValue.timestamp(run.end),
            **time_range(stats.first, stats.last),
            http_calls=landed.calls,
            tags_unknown_to_pi=len(landed.missing),
            tags_unknown_sample=dg.MetadataValue.json(sorted(landed.missing)[:50]),
            pages=progress.pages,
            pages_planned=progress.total_pages or 0,
            values_per_second=round(stats.rows / progress.elapsed_s, 1),
            duration_s=round(progress.elapsed_s, 3),
            **extra,
            **write_result_metadata(landed.result),
        ),
        check_results=checks.timeseries_results(stats.profile, landed.pi_counts),
    )
