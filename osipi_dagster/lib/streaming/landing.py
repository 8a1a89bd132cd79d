"""Micro-batch landing: spool segments → the `pi_timeseries` Delta table as `source = "stream"` rows.

Owns the insert-if-absent merge on (web_id, timestamp, ordinal), the rule that (hour, stream) pairs already reconciled
from the archive are never touched by streamed rows, idempotence per segment, and the latency figures of each batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from osipi_dagster.lib.lake import DeltaTableRef, Lake, LakeConflictError
from osipi_dagster.lib.lake.predicates import timestamp_literal
from osipi_dagster.lib.landing.shards import with_shard_column
from osipi_dagster.lib.landing.tables import TIMESERIES_TABLE
from osipi_dagster.lib.piwebapi.schema import UTC_US, VALUES_SCHEMA
from osipi_dagster.lib.streaming.spool import SpoolReader, to_us

log = logging.getLogger(__name__)

KEY = ("web_id", "timestamp", "ordinal")
STREAM_SOURCE = "stream"
# Same columns as the recorded landing (docs/tables.md) plus `source`; Delta merges by column name.
STREAMED_SCHEMA = pl.Schema(
    {**VALUES_SCHEMA, "tag": pl.Utf8, "ingested_at": UTC_US, "date": pl.Date, "source": pl.Utf8}
)
# Commit metadata of every streamed batch: which segments, and the `ingested_at` stamp its rows carry, so the
# commit time of any streamed row can be found in the Delta log (the benchmark's per-value latency uses it).
BATCH_LABEL_KEY = "osipi.stream_batch"
INGESTED_AT_KEY = "osipi.ingested_at"
# The lander's report of a batch (JSON), committed atomically with its rows: what Dagster shows as the
# materialization of this landing (defs/streaming/reporting.py reads it back from the Delta log, exactly once).
REPORT_KEY = "osipi.stream_report"
OWNED_SCHEMA = pl.Schema({"hour": UTC_US, "web_id": pl.Utf8})


@dataclass
class LandingReport:
    """What one micro-batch did; `as_metadata()` is what the Dagster asset shows."""

    segments: list[str] = field(default_factory=list)
    segments_missing: list[str] = field(default_factory=list)
    rows_read: int = 0
    channel_rows: int = 0
    gap_rows: int = 0
    duplicates_in_batch: int = 0
    superseded_by_archive: int = 0
    inserted: int = 0
    already_present: int = 0
    merge_attempts: int = 0
    delta_version: int | None = None
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    spool_to_lake_p50_s: float | None = None
    spool_to_lake_p95_s: float | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class MergeOutcome:
    """Result of `insert_absent`: rows inserted, rows refused because the archive owns them, the commit."""

    inserted: int
    superseded: int
    version: int | None
    attempts: int


def _quantiles(values: pl.Series) -> tuple[float | None, float | None]:
    if values.is_empty():
        return None, None
    secs = values.cast(pl.Float64) / 1e6
    return round(float(secs.quantile(0.5, "linear")), 3), round(float(secs.quantile(0.95, "linear")), 3)


def archive_owned(snapshot: DeltaTable, frame: pl.DataFrame) -> pl.DataFrame:
    """(hour, web_id) pairs of `frame` that this table version gives to the archive: streamed rows must not go there.

    An hour is reconciled when the recorded partition replaced it (it holds archive rows); a stream belongs to the
    archive there when the archive has rows of it in the batch's hours. A stream the recorded landing does not
    read (outside PI_TAG_FILTER) never has archive rows, so its streamed rows are always kept. Rows written before
    the `source` column existed can only come from the recorded landing.
    """
    if frame.is_empty():
        return pl.DataFrame(schema=OWNED_SCHEMA)
    hour = pl.col("timestamp").dt.truncate("1h")
    lo = frame.select(hour.min()).item()
    hi = frame.select(hour.max()).item() + timedelta(hours=1)
    scan = pl.scan_delta(snapshot).filter(
        pl.col("date").is_in(frame["date"].unique().implode())
        & (pl.col("timestamp") >= pl.lit(lo, dtype=UTC_US))
        & (pl.col("timestamp") < pl.lit(hi, dtype=UTC_US))
    )
    if "source" in snapshot.schema().to_arrow().names:
        scan = scan.filter(pl.col("source").is_null() | (pl.col("source") != STREAM_SOURCE))
    archive = scan.select(hour.alias("hour"), "web_id").unique().collect()
    if archive.is_empty():
        return pl.DataFrame(schema=OWNED_SCHEMA)
    hours = archive.select("hour").unique()
    streams = archive.select("web_id").unique().join(frame.select("web_id").unique(), on="web_id")
    return hours.join(streams, how="cross").select(list(OWNED_SCHEMA)).cast(dict(OWNED_SCHEMA))


def _merge_predicate(frame: pl.DataFrame) -> str:
    dates = ", ".join(f"'{d.isoformat()}'" for d in sorted(frame["date"].unique().to_list()))
    lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    # Partition and timestamp bounds on the target let delta-rs prune to the files that can hold these keys.
    return (
        f"t.date IN ({dates}) AND t.timestamp >= {timestamp_literal(lo)} "
        f"AND t.timestamp <= {timestamp_literal(hi)} AND " + " AND ".join(f"t.{k} = s.{k}" for k in KEY)
    )


def insert_absent(
    ref: DeltaTableRef,
    frame: pl.DataFrame,
    *,
    label: str,
    before_merge: Callable[[int], None] | None = None,
    report: Mapping[str, object] | None = None,
) -> MergeOutcome:
    """Insert the rows whose key is absent and whose (hour, web_id) the archive does not own, in one commit.

    Ownership is decided on the same table snapshot the merge runs on, once per attempt: a concurrent commit (the
    hourly replace) makes the merge's commit fail, and the retry (the table's `commit_retry` policy, as every lake
    write) decides again on the new version, so streamed rows
    can never slip into an hour the archive took in between. An existing row always wins, so a replayed segment
    inserts nothing. `before_merge(attempt)` runs between the ownership decision and the merge (a test seam).
    `report` (the lander's) is committed with the rows under REPORT_KEY, with this attempt's superseded count.
    """
    if frame.is_empty():
        return MergeOutcome(0, 0, None, 0)
    options = dict(ref.storage_options) or None
    stamp = frame["ingested_at"].max()
    base = {BATCH_LABEL_KEY: label, INGESTED_AT_KEY: stamp.isoformat() if stamp else ""}

    def commit(superseded: int) -> CommitProperties:
        if report is None:
            return CommitProperties(custom_metadata=base)
        body = orjson.dumps({**report, "superseded_by_archive": superseded}).decode()
        return CommitProperties(custom_metadata={**base, REPORT_KEY: body})

    attempts = ref.commit_retry.attempts()
    while True:
        outcome = _insert_once(ref, frame, options, commit, label, attempts.made, before_merge)
        if outcome is not None:
            return outcome
        if not attempts.pause():
            raise LakeConflictError(
                f"streamed batch {label} lost the commit race {attempts.made} times on {ref.uri}: "
                "another writer commits to the same dates continuously; rerun the batch"
            )


def _insert_once(
    ref: DeltaTableRef,
    frame: pl.DataFrame,
    options: dict[str, str] | None,
    commit: Callable[[int], CommitProperties],
    label: str,
    attempt: int,
    before_merge: Callable[[int], None] | None,
) -> MergeOutcome | None:
    """One attempt of `insert_absent`; None when it lost a commit race (the caller waits and tries again)."""
    if not ref.exists():
        if before_merge is not None:
            before_merge(attempt)
        try:
            # mode="error": if another writer created the table meanwhile, decide ownership again against it.
            write_deltalake(
                ref.uri,
                pa.table(frame.to_arrow()),
                mode="error",
                partition_by=["date"],
                storage_options=options,
                commit_properties=commit(0),
            )
        except (DeltaError, OSError) as exc:
            if ref.exists():
                return None
            raise LakeConflictError(f"creating {ref.uri} for streamed batch {label} failed: {exc}") from exc
        return MergeOutcome(frame.height, 0, 0, attempt)
    snapshot = ref.delta()
    frame = with_shard_column(snapshot, frame)  # a sharded pi_timeseries (tag_shards > 1) partitions by shard
    owned = archive_owned(snapshot, frame)
    keep = frame.join(
        owned,
        left_on=[pl.col("timestamp").dt.truncate("1h"), "web_id"],
        right_on=["hour", "web_id"],
        how="anti",
    )
    superseded = frame.height - keep.height
    if before_merge is not None:
        before_merge(attempt)
    if keep.is_empty():
        return MergeOutcome(0, superseded, None, attempt)
    try:
        metrics = (
            snapshot.merge(
                pa.table(keep.to_arrow()),
                _merge_predicate(keep),
                source_alias="s",
                target_alias="t",
                merge_schema=True,
                commit_properties=commit(superseded),
            )
            .when_not_matched_insert_all()
            .execute()
        )
    except CommitFailedError as exc:
        # Someone committed after our snapshot (e.g. the hourly replace): decide ownership again on the new one.
        log.info("streamed batch %s: concurrent commit on %s (attempt %d): %s", label, ref.uri, attempt, exc)
        return None
    inserted = int(metrics.get("num_target_rows_inserted", 0))
    return MergeOutcome(inserted, superseded, snapshot.version() if inserted else None, attempt)


def _us_quantiles(values: pl.Series, qs: Sequence[float]) -> dict[str, int] | None:
    if values.is_empty():
        return None
    return {f"p{round(q * 100)}": int(values.quantile(q, "lower")) for q in qs}  # type: ignore[arg-type]


def batch_report(names: Sequence[str], batch: pl.DataFrame, report: LandingReport) -> dict[str, object]:
    """What a landing commits about itself (known before its commit): segments, counts, time span, and the
    quantiles of its channel values' PI timestamps and receipt times on this host's clock, from which the
    reader derives latency against the commit's own timestamp (p95 latency = commit − p5 timestamp)."""
    channel = batch.filter(pl.col("origin") == "channel")
    pi_local = channel["received_at"].dt.epoch("us") - channel["lag_us"]
    return {
        "segments": [names[0], names[-1]],
        "segment_count": len(names),
        "values": report.rows_read,
        "channel_values": report.channel_rows,
        "gap_values": report.gap_rows,
        "duplicates_in_batch": report.duplicates_in_batch,
        "first_timestamp": batch["timestamp"].min().isoformat(),  # type: ignore[union-attr]
        "last_timestamp": batch["timestamp"].max().isoformat(),  # type: ignore[union-attr]
        "pi_ts_local_us": _us_quantiles(pi_local, (0.0, 0.05, 0.5)),
        "received_us": _us_quantiles(batch["received_at"].dt.epoch("us"), (0.05, 0.5)),
    }


def land_segments(
    lake: Lake,
    spool: SpoolReader,
    names: Sequence[str],
    *,
    table: str = TIMESERIES_TABLE,
    ingested_at: datetime | None = None,
    before_merge: Callable[[int], None] | None = None,
    report_extra: Mapping[str, object] | None = None,
) -> LandingReport:
    """Land exactly these spool segments into `table`, then mark them landed.

    Idempotent by segment: replaying a landed segment inserts nothing (every key is present, or its hour has
    since been replaced from the archive). A segment already pruned from the spool was landed long ago: skipped.
    With `report_extra` (the lander's figures), the batch's report is committed with its rows (`batch_report`).
    """
    began = time.monotonic()
    report = LandingReport(segments=list(names))
    parts = []
    for name in names:
        if spool.locate(name) is None:
            report.segments_missing.append(name)
            continue
        parts.append(spool.read(name))
    batch = pl.concat(parts) if parts else pl.DataFrame()
    ref = lake.table(table)
    if batch.height:
        report.rows_read = batch.height
        report.channel_rows = int((batch["origin"] == "channel").sum())
        report.gap_rows = report.rows_read - report.channel_rows
        # A gap read and a channel message may both carry a value: the first received wins.
        batch = batch.unique(list(KEY), keep="first", maintain_order=True)
        report.duplicates_in_batch = report.rows_read - batch.height
        stamp = ingested_at or datetime.now(UTC)
        rows = batch.with_columns(
            pl.lit(stamp, dtype=UTC_US).alias("ingested_at"),
            pl.col("timestamp").dt.date().alias("date"),
            pl.lit(STREAM_SOURCE).alias("source"),
        )
        outcome = insert_absent(
            ref,
            rows.select(list(STREAMED_SCHEMA)).cast(dict(STREAMED_SCHEMA)),
            label=f"{names[0]}..{names[-1]}",
            before_merge=before_merge,
            report=None if report_extra is None else {**batch_report(names, batch, report), **report_extra},
        )
        report.inserted, report.delta_version = outcome.inserted, outcome.version
        report.superseded_by_archive, report.merge_attempts = outcome.superseded, outcome.attempts
        report.already_present = rows.height - report.superseded_by_archive - report.inserted
        report.first_timestamp, report.last_timestamp = rows["timestamp"].min(), rows["timestamp"].max()
        landed_us = to_us(datetime.now(UTC))
        waited = pl.lit(landed_us) - pl.col("received_at").dt.epoch("us")
        lat = batch.filter(pl.col("origin") == "channel").select(pl.col("lag_us") + waited)
        report.latency_p50_s, report.latency_p95_s = _quantiles(lat.to_series())
        report.spool_to_lake_p50_s, report.spool_to_lake_p95_s = _quantiles(batch.select(waited).to_series())
    spool.mark_landed(n for n in names if n not in report.segments_missing)
    report.duration_s = round(time.monotonic() - began, 3)
    log.info(
        "landed %d segments: %d rows read, %d inserted, %d already present, %d superseded by the archive",
        len(names),
        report.rows_read,
        report.inserted,
        report.already_present,
        report.superseded_by_archive,
    )
    return report
