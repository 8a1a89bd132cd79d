"""PI software-defined assets: tag catalogue, AF hierarchy, event frames and recorded values, landed in Delta.

Each asset writes its own table idempotently (SCD2 merge or time-window replace) and returns MaterializeResult.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi import checks
from osipi_dagster.defs.pi.partitions import HOURS_PER_BACKFILL_RUN, daily_partitions, hourly_partitions
from osipi_dagster.defs.pi.reporting import Progress, table_metadata, time_range
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.lib.lake import DeltaTableRef, Lake, WriteResult, extra_predicate_expr
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import (
    ATTRIBUTES_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    ELEMENTS_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    POINTS_SCHEMA,
    UTC_US,
    VALUES_SCHEMA,
)
from osipi_dagster.lib.quality import (
    HOUR_STATS_SCHEMA,
    POINT_COLUMNS,
    DiffTally,
    DuplicateKeyError,
    HourStatsAccumulator,
    LogHistogram,
    RowDiff,
    WindowProfile,
    cell_batches,
    changed_cells,
    hour_stats,
)
from osipi_dagster.lib.quality.audit import CONTENT, KEY
from osipi_dagster.lib.quality.window import tag_runs

KEY_PREFIX = "pi"
GROUP = "pi"
POOL = "pi_web_api"
KINDS = {"deltalake", "polars"}
# Every PI asset: one group, Delta + polars badges, and the pool that bounds concurrent load on PI Web API.
PI_ASSET: dict[str, Any] = {"key_prefix": KEY_PREFIX, "group_name": GROUP, "kinds": KINDS, "pool": POOL}
DAILY_ASSET: dict[str, Any] = {
    **PI_ASSET,
    "partitions_def": daily_partitions,
    "backfill_policy": dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
}

# Dimension snapshots and event frames are refreshed daily (00:15 / 00:30 UTC): warn when a day was missed.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=25)
)

# Lake table names equal the asset names.
POINTS_TABLE = "pi_points"
ELEMENTS_TABLE = "af_elements"
ATTRIBUTES_TABLE = "af_attributes"
EVENT_FRAMES_TABLE = "event_frames"
EF_ATTRIBUTES_TABLE = "event_frame_attributes"
TIMESERIES_TABLE = "pi_timeseries"

# Landed schemas: the client's schema plus what the landing adds. Documented in docs/tables.md.
TIMESERIES_SCHEMA = pl.Schema(
    {**VALUES_SCHEMA, "tag": pl.Utf8, "ingested_at": UTC_US, "source": pl.Utf8, "date": pl.Date}
)
# `source` of archive reads. Streamed rows (defs/streaming) land as "stream"; a recorded hour's replace_window makes
# the archive the truth for that window again.
SOURCE_RECORDED = "recorded"
# Run tag set by the late-data sensor on repair runs: the asset then diffs the window it replaces.
REPAIR_TAG = "osipi/repair"
REPAIR_REASON_TAG = "osipi/repair_reason"
AF_ATTRIBUTES_SCHEMA = pl.Schema({**ATTRIBUTES_SCHEMA, "database": pl.Utf8})
EVENT_FRAMES_LANDED_SCHEMA = pl.Schema({**EVENT_FRAMES_SCHEMA, "ingested_at": UTC_US, "date": pl.Date})
EF_ATTRIBUTES_LANDED_SCHEMA = pl.Schema(
    {
        **EF_ATTRIBUTES_SCHEMA,
        "event_frame_start": UTC_US,
        "database": pl.Utf8,
        "ingested_at": UTC_US,
        "date": pl.Date,
    }
)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the assets


def utc(moment: datetime) -> datetime:
    """Partition windows come back as tz-aware datetimes in the partitions' zone (UTC); normalise to stdlib UTC."""
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)


def pi_name_filter_regex(name_filter: str) -> str:
    """PI name filter (`*` any run, `?` one character, case-insensitive) as an anchored regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name_filter)
    return f"(?i)^{body}$"


def read_current(lake: Lake, table: str, columns: list[str], upstream: str) -> pl.DataFrame:
    """Current rows (is_current) of an SCD2 dimension table; a clear error if it was never materialized."""
    ref = lake.table(table)
    if not ref.exists():
        raise dg.Failure(
            f"Delta table {ref.uri} does not exist yet: materialize {upstream} first "
            f"(e.g. with pi_catalogue_job), then re-run this partition."
        )
    return ref.scan().filter(pl.col("is_current")).select(columns).collect()


def pull(pi: PIWebAPIResource, read: Callable[[PIWebAPIClient], pl.DataFrame]) -> tuple[pl.DataFrame, int]:
    """Run `read` with a fresh client; returns its frame and the number of HTTP calls it made."""
    with pi.get_client() as client:
        before = client.stats.http_calls
        frame = read(client)
        return frame, int(client.stats.http_calls - before)


def select_by_name(available: list, wanted: list[str], attr: str, what: str, variable: str) -> list:
    """The configured subset (case-insensitive, PI names are), or everything when nothing is configured."""
    if not wanted:
        return available
    by_name = {str(getattr(item, attr)).lower().lstrip("\\"): item for item in available}
    missing = [w for w in wanted if w.lower().lstrip("\\") not in by_name]
    if missing:
        known = ", ".join(sorted(str(getattr(item, attr)) for item in available)) or "none"
        raise dg.Failure(
            f"{variable} names {what} that PI Web API does not know: {', '.join(missing)}. Known: {known}. "
            f"Fix {variable} or leave it empty for all."
        )
    return [by_name[w.lower().lstrip("\\")] for w in wanted]


def af_databases(client: PIWebAPIClient, wanted: list[str]) -> list:
    databases = [db for server in client.asset_servers() for db in client.asset_databases(server)]
    return select_by_name(databases, wanted, "path", "AF databases", "PI_AF_DATABASES")


def snapshot(frames: Iterable[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """Concatenate client pages into one frame of exactly `schema` (also when there are none)."""
    parts = [frame.select(list(schema)).cast(dict(schema)) for frame in frames]
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=schema)


def write_result_metadata(result: WriteResult) -> dict[str, object]:
    """The lake writer's figures for this commit."""
    out: dict[str, object] = {
        "delta_version": result.version if result.version is not None else "unchanged",
        "rows_written": result.rows_written,
        "files_added": result.files_added,
        "files_removed": result.files_removed,
        "write_duration_s": round(result.duration_s, 3),
        "write_attempts": result.attempts,
    }
    if result.rows_deleted is not None:
        out["rows_deleted"] = result.rows_deleted
    for name in ("inserted", "changed", "deleted", "unchanged"):
        if name in result.metrics:
            out[f"scd2_{name}"] = int(result.metrics[name])
    return out


def total_rows(ref: DeltaTableRef, fallback: int) -> int:
    """Rows of the whole table from the Delta log (no data file is read), for `dagster/row_count` of partitioned
    assets; `fallback` (the rows of this window) when the log carries no counts."""
    rows = ref.table_stats().get("rows")
    return int(rows) if rows is not None else fallback


def dimension_result(
    context: dg.AssetExecutionContext,
    lake: Lake,
    table: str,
    frame: pl.DataFrame,
    *,
    as_of: datetime,
    calls: int,
    check_results: list[dg.AssetCheckResult],
    **extra: object,
) -> dg.MaterializeResult:
    """SCD2-merge a dimension snapshot and describe it."""
    ref = lake.table(table)
    # A duplicated key fails the check below; landing one copy keeps the table usable meanwhile.
    frame = frame.unique("web_id", keep="first", maintain_order=True)
    # Every non-key column is compared: a renamed tag or a moved element opens a new version.
    result = ref.scd2_merge(frame, key=["web_id"], as_of=as_of)
    context.log.info(f"{table}: merged a snapshot of {frame.height:,} rows into {ref.uri} ({result})")
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=frame.height,
            preview=frame,
            http_calls=calls,
            as_of=dg.MetadataValue.timestamp(as_of),
            **write_result_metadata(result),
            **extra,
        ),
        check_results=check_results,
    )


# ---------------------------------------------------------------------------------------------------------------
# Dimension snapshots (unpartitioned, daily): SCD2 history in Delta


@dg.asset(
    **PI_ASSET,
    freshness_policy=DAILY_FRESHNESS,
    check_specs=[checks.POINTS_UNIQUE_WEB_ID],
    description="PI point catalogue of every configured data server (PI_DATA_SERVERS), SCD2 history.",
)
def pi_points(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    settings = pi.settings()
    as_of = datetime.now(UTC)

    def read(client: PIWebAPIClient) -> pl.DataFrame:
        servers = select_by_name(
            client.data_servers(), settings.data_servers, "name", "data servers", "PI_DATA_SERVERS"
        )
        return snapshot((page for s in servers for page in client.iter_points(s, "*")), POINTS_SCHEMA)

    frame, calls = pull(pi, read)
    per_server = frame.group_by("server").len().sort("server")
    return dimension_result(
        context,
        lake.get_lake(),
        POINTS_TABLE,
        frame,
        as_of=as_of,
        calls=calls,
        check_results=[checks.unique_web_id(checks.POINTS_UNIQUE_WEB_ID, frame)],
        data_servers=dg.MetadataValue.json(dict(per_server.iter_rows())),
        tag_count=frame.height,
    )


@dg.asset(
    **PI_ASSET,
    freshness_policy=DAILY_FRESHNESS,
    check_specs=[checks.ELEMENTS_TREE_COMPLETE],
    description="AF element hierarchy of every configured AF database (PI_AF_DATABASES), SCD2 history.",
)
def af_elements(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    settings = pi.settings()
    as_of = datetime.now(UTC)

    def read(client: PIWebAPIClient) -> pl.DataFrame:
        databases = af_databases(client, settings.af_databases)
        return snapshot((page for db in databases for page in client.iter_elements(db)), ELEMENTS_SCHEMA)

    frame, calls = pull(pi, read)
    return dimension_result(
        context,
        lake.get_lake(),
        ELEMENTS_TABLE,
        frame,
        as_of=as_of,
        calls=calls,
        check_results=[checks.tree_complete(checks.ELEMENTS_TREE_COMPLETE, frame)],
        databases=dg.MetadataValue.json(dict(frame.group_by("database").len().sort("database").iter_rows())),
        max_depth=int(frame["depth"].max() or 0) if frame.height else 0,
    )


@dg.asset(
    **PI_ASSET,
    deps=[af_elements],
    freshness_policy=DAILY_FRESHNESS,
    check_specs=[checks.ATTRIBUTES_POINTS_RESOLVED],
    description="Attributes of the current AF elements, PI point data references resolved, SCD2 history.",
)
def af_attributes(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    the_lake = lake.get_lake()
    elements = read_current(the_lake, ELEMENTS_TABLE, ["web_id", "database"], "pi/af_elements")
    as_of = datetime.now(UTC)
    frame, calls = pull(
        pi, lambda client: snapshot(client.iter_attributes(elements["web_id"].to_list()), ATTRIBUTES_SCHEMA)
    )
    frame = frame.join(elements.rename({"web_id": "element_web_id"}), on="element_web_id", how="left").select(
        list(AF_ATTRIBUTES_SCHEMA)
    )
    return dimension_result(
        context,
        the_lake,
        ATTRIBUTES_TABLE,
        frame,
        as_of=as_of,
        calls=calls,
        check_results=[checks.points_resolved(checks.ATTRIBUTES_POINTS_RESOLVED, frame)],
        elements=elements.height,
        pi_point_attributes=int(frame["point_web_id"].is_not_null().sum()),
    )


# ---------------------------------------------------------------------------------------------------------------
# Event frames: UTC-day partitions, each frame in the day it starts


@dg.asset(
    **DAILY_ASSET,
    freshness_policy=DAILY_FRESHNESS,
    description="Event frames of the configured AF databases that start in the partition's UTC day; "
    "in-progress frames have end null and in_progress true until a later run closes them.",
)
def event_frames(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = utc(window.start), utc(window.end)
    settings = pi.settings()
    ingested_at = datetime.now(UTC)
    databases: list[Any] = []

    def read(client: PIWebAPIClient) -> pl.DataFrame:
        databases.extend(af_databases(client, settings.af_databases))
        pages = (page for db in databases for page in client.iter_event_frames(db, start, end))
        return snapshot(pages, EVENT_FRAMES_SCHEMA)

    frame, calls = pull(pi, read)
    # The search returns frames overlapping the window; keep those that start in it so each frame lives in one day.
    frame = (
        frame.filter((pl.col("start") >= start) & (pl.col("start") < end))
        .unique("web_id", keep="first", maintain_order=True)
        .with_columns(
            pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"), pl.col("start").dt.date().alias("date")
        )
        .select(list(EVENT_FRAMES_LANDED_SCHEMA))
        .sort("start", "web_id")
    )
    ref = lake.get_lake().table(EVENT_FRAMES_TABLE)
    result = ref.replace_window([frame], column="start", start=start, end=end, partition_by=["date"])
    in_progress = int(frame["in_progress"].sum())
    context.log.info(
        f"event_frames {start:%Y-%m-%d}..{end:%Y-%m-%d}: {frame.height} frames, {in_progress} in progress"
    )
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, frame.height),
            preview=frame,
            **{"dagster/partition_row_count": dg.MetadataValue.int(frame.height)},
            http_calls=calls,
            event_frames=frame.height,
            in_progress=in_progress,
            databases=len(databases),
            **time_range(frame["start"].min(), frame["start"].max()),
            **write_result_metadata(result),
        )
    )


@dg.asset(
    **DAILY_ASSET,
    deps=[event_frames],
    freshness_policy=DAILY_FRESHNESS,
    description="Attributes of the partition's event frames with their captured values.",
)
def event_frame_attributes(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = utc(window.start), utc(window.end)
    the_lake = lake.get_lake()
    frames_ref = the_lake.table(EVENT_FRAMES_TABLE)
    if not frames_ref.exists():
        raise dg.Failure(
            f"Delta table {frames_ref.uri} does not exist yet: materialize pi/event_frames first."
        )
    frames = (
        frames_ref.scan()
        .filter((pl.col("start") >= start) & (pl.col("start") < end))
        .select(
            pl.col("web_id").alias("event_frame_web_id"),
            pl.col("start").alias("event_frame_start"),
            "database",
        )
        .collect()
    )
    ingested_at = datetime.now(UTC)
    frame, calls = pull(
        pi,
        lambda client: snapshot(
            client.iter_event_frame_attributes(frames["event_frame_web_id"].to_list()), EF_ATTRIBUTES_SCHEMA
        ),
    )
    frame = (
        frame.join(frames, on="event_frame_web_id", how="inner")
        .with_columns(
            pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
            pl.col("event_frame_start").dt.date().alias("date"),
        )
        .select(list(EF_ATTRIBUTES_LANDED_SCHEMA))
    )
    ref = the_lake.table(EF_ATTRIBUTES_TABLE)
    result = ref.replace_window(
        [frame], column="event_frame_start", start=start, end=end, partition_by=["date"]
    )
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, frame.height),
            preview=frame,
            **{"dagster/partition_row_count": dg.MetadataValue.int(frame.height)},
            http_calls=calls,
            event_frames=frames.height,
            attributes=frame.height,
            **write_result_metadata(result),
        )
    )


# ---------------------------------------------------------------------------------------------------------------
# Recorded values: UTC-hour partitions streamed page by page into one Delta commit per run

# Rows (before + after) of changed (tag, hour) cells a repair diffs at once: bounds a repair's extra memory.
REPAIR_DIFF_BATCH_ROWS = 500_000


@dataclass
class LandingStats:
    """What went through one attempt of the landing stream, gathered on the fly in memory bounded per tag, not per
    row: counts, the quality profile (with the per-tag key-order guard), a fixed-size data-age histogram, and for
    repair runs the per (tag, hour) checksums of the rows landed."""

    profile: WindowProfile
    rows: int = 0
    dropped_outside_window: int = 0
    web_ids: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None
    preview: pl.DataFrame | None = None
    ages: LogHistogram = field(default_factory=LogHistogram)
    hours: HourStatsAccumulator | None = None


def land_values(
    pages: Iterable[pl.DataFrame],
    tags: pl.DataFrame,
    *,
    start: datetime,
    end: datetime,
    ingested_at: datetime,
    stats: LandingStats,
) -> Iterator[pl.DataFrame]:
    """Client pages → landed rows: half-open window [start, end), tag name joined, landing columns added.

    PI's recorded calls include values stamped exactly at `end`; they belong to the next partition, and keeping
    them here would duplicate them on the boundary. Each page is profiled before it is yielded to the writer, so a
    page repeating a key raises DuplicateKeyError and the writer never commits.
    """
    emitted = False
    names = tags.select("web_id", "tag")
    # Tag names by web id, for pages that come tag by tag (the client's): one lookup per tag instead of a join.
    tag_of = dict(names.iter_rows()) if names["web_id"].is_unique().all() else None
    ingested_us = int(ingested_at.timestamp()) * 1_000_000 + ingested_at.microsecond
    landing = [
        pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
        pl.lit(SOURCE_RECORDED, dtype=pl.Utf8).alias("source"),
        pl.col("timestamp").dt.date().alias("date"),
    ]
    for page in pages:
        stamps = page["timestamp"]
        within = stamps.dtype == UTC_US and page.height and not stamps.has_nulls()
        if within and stamps.min() >= start and stamps.max() < end:  # type: ignore[operator]
            inside = page  # the client reads within the window: nothing to drop (and no copy)
        else:
            inside = page.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))
        stats.dropped_outside_window += page.height - inside.height
        if inside.height == 0:
            continue
        runs = tag_runs(inside["web_id"]) if tag_of is not None else None
        if runs is not None and tag_of is not None:
            run_tags = pl.Series("tag", [tag_of.get(w) for w in runs.web_ids], dtype=pl.Utf8)
            joined = inside.with_columns(run_tags.gather(runs.per_row(np.arange(len(runs.web_ids)))))
        else:
            joined = inside.join(names, on="web_id", how="left", maintain_order="left")
        landed = joined.with_columns(landing).select(list(TIMESERIES_SCHEMA))
        if landed.schema != TIMESERIES_SCHEMA:
            landed = landed.cast(dict(TIMESERIES_SCHEMA))
        stats.profile.add(landed, runs)
        stats.rows += landed.height
        stats.web_ids.update(runs.web_ids if runs is not None else landed["web_id"].unique().to_list())
        lo, hi = landed["timestamp"].min(), landed["timestamp"].max()
        stats.first = lo if stats.first is None else min(stats.first, lo)  # type: ignore[type-var]
        stats.last = hi if stats.last is None else max(stats.last, hi)  # type: ignore[type-var]
        if stats.preview is None:
            stats.preview = landed.head(5)
        stats.ages.add((ingested_us - landed["timestamp"].dt.epoch("us").to_numpy()) / 1e6)
        if stats.hours is not None:
            stats.hours.add(landed)
        emitted = True
        yield landed
    if not emitted:
        # An empty window still replaces what was there (e.g. values deleted in PI) and keeps the schema known.
        yield pl.DataFrame(schema=TIMESERIES_SCHEMA)


def tags_to_extract(lake: Lake, tag_filter: str) -> pl.DataFrame:
    """Current catalogue rows whose name matches PI_TAG_FILTER: new tags join on the next catalogue refresh.

    Columns POINT_COLUMNS (web_id, tag, point_type, span, zero): the quality profile checks values against them.
    """
    points = read_current(
        lake, POINTS_TABLE, ["web_id", "name", "point_type", "span", "zero"], "pi/pi_points"
    )
    return (
        points.filter(pl.col("name").str.contains(pi_name_filter_regex(tag_filter)))
        .rename({"name": "tag"})
        .unique("web_id")
        .select(POINT_COLUMNS)
        .sort("tag", "web_id")
    )


def recorded_scan(
    ref: DeltaTableRef, start: datetime, end: datetime, version: int | None = None
) -> pl.LazyFrame:
    """The archive rows (source "recorded", or null from before the column existed) of [start, end) in the lake
    (latest, or a given table version), lazily: date-partition pruning plus a timestamp filter, so a caller can
    aggregate without loading rows."""
    if not ref.exists():
        return pl.LazyFrame(schema=TIMESERIES_SCHEMA)
    scan = ref.scan(version)
    days = pl.date_range(start.date(), (end - timedelta(microseconds=1)).date(), eager=True)
    scan = scan.filter(
        pl.col("date").is_in(days.implode()) & (pl.col("timestamp") >= start) & (pl.col("timestamp") < end)
    )
    if "source" in scan.collect_schema():
        scan = scan.filter(pl.col("source").fill_null(SOURCE_RECORDED) == SOURCE_RECORDED)
    return scan


def partition_of(context: dg.AssetExecutionContext) -> str | None:
    """The single partition key of the run, or None for a range (backfill) run."""
    keys = context.partition_keys
    return keys[0] if len(keys) == 1 else None


# Recorded reads go one hour at a time, whatever the run's range: the client yields one frame per (stream group,
# time window) and, before it has learned the tags' densities, a window is the whole requested range, so a 24-hour
# backfill run would hold frames 24 times larger (measured: peak RSS 965 MiB for 6 h of 10,000 tags vs 401 MiB
# for 1 h, client alone). Hour by hour, peak memory does not depend on the range length.
READ_CHUNK = timedelta(hours=1)


def hourly_pages(
    client: PIWebAPIClient, ids: list[str], start: datetime, end: datetime, progress: Progress
) -> Iterator[pl.DataFrame]:
    """Every recorded value of `ids` in [start, end), read READ_CHUNK at a time (each tag stays in time order).

    Restarts `progress` with the planned page total; a later chunk the client splits further (densities learned
    on the earlier ones) raises the total when its read starts."""
    chunks: list[tuple[datetime, datetime]] = []
    t = start
    while t < end and ids:
        chunks.append((t, min(t + READ_CHUNK, end)))
        t += READ_CHUNK
    estimates = [client.plan_recorded(ids, a, b) for a, b in chunks]
    progress.restart(sum(estimates))

    def read() -> Iterator[pl.DataFrame]:
        for (a, b), estimate in zip(chunks, estimates, strict=True):
            plan = client.plan_recorded(ids, a, b)
            progress.total_pages = (progress.total_pages or 0) + plan - estimate
            yield from client.iter_recorded(ids, a, b)

    return progress.track(read())


def repair_diff(
    ref: DeltaTableRef,
    *,
    start: datetime,
    end: datetime,
    before_version: int | None,
    before: pl.DataFrame,
    after_version: int,
    after: pl.DataFrame,
    ingested_at: datetime,
) -> RowDiff:
    """What a repair changed. Per (tag, hour) checksums (`before` from the previous table version, `after` from the
    landing stream) find the cells that differ; only those are read back, from both table versions (Delta time
    travel), in batches of at most REPAIR_DIFF_BATCH_ROWS rows, and diffed row by row."""
    cells, unchanged_rows = changed_cells(before, after)
    tally = DiffTally(ingested_at, unchanged=unchanged_rows)
    columns = [*KEY, *CONTENT[2:]]

    def rows(version: int | None, batch: pl.DataFrame) -> pl.DataFrame:
        if version is None:
            return pl.DataFrame(schema={c: TIMESERIES_SCHEMA[c] for c in columns})
        lo = batch["hour"].min()
        hi = batch["hour"].max() + timedelta(hours=1)  # type: ignore[operator]
        ids = batch["web_id"].unique().implode()
        return (
            recorded_scan(ref, max(start, lo), min(end, hi), version)  # type: ignore[type-var]
            .filter(pl.col("web_id").is_in(ids))
            .with_columns(pl.col("timestamp").dt.truncate("1h").alias("hour"))
            .join(batch.lazy().select("web_id", "hour"), on=["web_id", "hour"], how="semi")
            .select(columns)
            .collect()
        )

    for batch in cell_batches(cells, REPAIR_DIFF_BATCH_ROWS):
        tally.add(rows(before_version, batch), rows(after_version, batch))
    return tally.result()


@dg.asset(
    **PI_ASSET,
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=HOURS_PER_BACKFILL_RUN),
    deps=[pi_points],
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
    ),
    check_specs=checks.TIMESERIES_CHECKS,
    description="Recorded values (every archive event, duplicates kept by ordinal) of the catalogued tags "
    "matching PI_TAG_FILTER, one UTC hour per partition, Delta-partitioned by date.",
)
def pi_timeseries(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    try:
        result = land_window(context, pi, lake)
    except DuplicateKeyError as err:
        # Yielded (not logged) so the failed blocking check is recorded before the step fails; no materialization.
        yield checks.duplicate_keys_result(err)
        raise dg.Failure(
            description=str(err),
            metadata={"offending": err.offending, "tags": dg.MetadataValue.json(err.web_ids[:20])},
        ) from err
    yield result


def owned_rows(ids: list[str], tag_filter: str) -> dict[str, list[str]] | str | None:
    """The replace predicate beyond the time window: None (every row) when PI_TAG_FILTER is "*", else the run's
    web ids, or a predicate matching nothing when the filter matched no tag."""
    if tag_filter.strip() == "*":
        return None
    return {"web_id": ids} if ids else "false"


def scoped(scan: pl.LazyFrame, scope: dict[str, list[str]] | str | None) -> pl.LazyFrame:
    """`scan` limited to the rows a run with `scope` (see owned_rows) replaces: the lake's own reading of it."""
    where = extra_predicate_expr(scope)
    return scan if where is None else scan.filter(where)


def land_window(
    context: dg.AssetExecutionContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.MaterializeResult:
    """pi_timeseries' body: stream the run's window from PI into one Delta commit and describe it; raises
    DuplicateKeyError (before the commit) when the stream repeats a key."""
    # A backfill run may carry up to HOURS_PER_BACKFILL_RUN hours: the window covers the whole range.
    window = context.partition_time_window
    start, end = utc(window.start), utc(window.end)
    settings = pi.settings()
    thresholds = pi.quality
    the_lake = lake.get_lake()
    tags = tags_to_extract(the_lake, settings.tag_filter)
    if tags.height == 0:
        context.log.warning(f"No current pi_points row matches PI_TAG_FILTER={settings.tag_filter!r}.")
    ingested_at = datetime.now(UTC)
    repair = context.run.tags.get(REPAIR_TAG)
    label = f"pi_timeseries {start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}Z ({tags.height} tags)"
    progress = Progress(context.log.info, label)
    ref = the_lake.table(TIMESERIES_TABLE)
    # A repair diffs the window it replaces: per (tag, hour) checksums of the current version (an aggregation, not
    # the rows), pinned to that version so the row diff later reads exactly what was replaced.
    ids = tags["web_id"].to_list()
    # A run owns the window of its tags only: with a PI_TAG_FILTER, rows of other tags (another filter's job,
    # streamed values of tags outside this one) are neither replaced nor counted in a repair's diff.
    scope = owned_rows(ids, settings.tag_filter)
    before_version = ref.version() if repair else None
    before = (
        hour_stats(scoped(recorded_scan(ref, start, end, before_version), scope))
        if before_version is not None
        else pl.DataFrame(schema=HOUR_STATS_SCHEMA)
    )
    attempts: list[LandingStats] = []
    with pi.get_client() as client:
        calls_before = client.stats.http_calls

        def extract() -> Iterator[pl.DataFrame]:
            # Called by the lake writer once per attempt: a lost commit race re-runs the extraction from PI.
            stats = LandingStats(
                profile=WindowProfile(tags, thresholds), hours=HourStatsAccumulator() if repair else None
            )
            attempts[:] = [stats]
            pages = hourly_pages(client, ids, start, end, progress)
            context.log.info(f"{label}: {progress.total_pages} pages planned")
            return land_values(pages, tags, start=start, end=end, ingested_at=ingested_at, stats=stats)

        # One commit for the whole window: a crash (or a duplicate key) before it leaves the previous version of
        # the window intact. A factory, so a lost commit race re-runs the extraction instead of failing.
        result = ref.replace_window(
            extract, column="timestamp", start=start, end=end, partition_by=["date"], extra_predicate=scope
        )
        # Completeness in the same run: PI's own Count per tag (one summary call per stream group) against the
        # good values just landed. Both sides are half-open, [start, end): recorded_counts asks PI with
        # EventWeightedExcludeMostRecentEvent, so a value stamped exactly at `end` (common: scan classes write on
        # whole seconds and minutes) belongs to the next window on both sides. Later data is the late-data sensor's.
        pi_counts = client.recorded_counts(ids, start, end) if ids else None
        calls = int(client.stats.http_calls - calls_before)
        # Catalogued tags PI no longer knows (deleted since the last catalogue run): skipped, never silently.
        missing = dict(client.stats.missing_web_ids)
    stats = attempts[-1]
    if missing:
        names = dict(tags.select("web_id", "tag").iter_rows())
        gone = sorted(names.get(w) or w for w in missing)
        context.log.warning(
            f"{label}: {len(gone)} catalogued tags are unknown to PI Web API and were skipped "
            f"(deleted or renamed since the last pi_points run?): {', '.join(gone[:20])}"
        )
    context.log.info(progress.line() + f"; landed {stats.rows:,} values of {len(stats.web_ids)} tags")
    extra: dict[str, object] = {f"data_age_{k}_s": v for k, v in stats.ages.summary().items()}
    if repair and stats.hours is not None and result.version is not None:
        diff = repair_diff(
            ref,
            start=start,
            end=end,
            before_version=before_version,
            before=before,
            after_version=result.version,
            after=stats.hours.result(),
            ingested_at=ingested_at,
        )
        repair_md: dict[str, object] = {
            "repair": repair,
            "repair_reason": context.run.tags.get(REPAIR_REASON_TAG, ""),
            "rows_inserted": diff.inserted,
            "rows_deleted": diff.deleted,
            "rows_changed": diff.changed,
            "rows_unchanged": diff.unchanged,
            "tags_changed": dg.MetadataValue.json(diff.tags_changed),
        }
        if diff.lateness_p50_s is not None:
            repair_md["late_rows_lateness_p50_s"] = round(diff.lateness_p50_s, 3)
            repair_md["late_rows_lateness_max_s"] = round(diff.lateness_max_s or 0.0, 3)
        extra.update(repair_md)
        context.log.info(
            f"repair of {label}: {diff.inserted} rows inserted, {diff.deleted} deleted, {diff.changed} changed "
            f"in {len(diff.tags_changed)} tags"
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key, partition=partition_of(context), metadata=repair_md
            )
        )
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, stats.rows),
            preview=stats.preview if stats.preview is not None else pl.DataFrame(schema=TIMESERIES_SCHEMA),
            **{"dagster/partition_row_count": dg.MetadataValue.int(stats.rows)},
            tags_requested=tags.height,
            tags_with_values=len(stats.web_ids),
            values=stats.rows,
            window_start=dg.MetadataValue.timestamp(start),
            window_end=dg.MetadataValue.timestamp(end),
            **time_range(stats.first, stats.last),
            http_calls=calls,
            tags_unknown_to_pi=len(missing),
            tags_unknown_sample=dg.MetadataValue.json(sorted(missing)[:50]),
            pages=progress.pages,
            pages_planned=progress.total_pages or 0,
            values_per_second=round(stats.rows / progress.elapsed_s, 1),
            duration_s=round(progress.elapsed_s, 3),
            **extra,
            **write_result_metadata(result),
        ),
        check_results=checks.timeseries_results(stats.profile, pi_counts),
    )
