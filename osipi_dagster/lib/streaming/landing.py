"""Micro-batch landing: spool segments → the `pi_timeseries` Delta table as `source = "stream"` rows.

Owns the insert-if-absent merge on (web_id, timestamp, ordinal), the rule that hours already reconciled from the
archive are never touched by streamed rows, idempotence per segment, and the latency figures of each batch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError

from osipi_dagster.lib.lake import DeltaTableRef, Lake, LakeConflictError
from osipi_dagster.lib.lake.predicates import timestamp_literal
from osipi_dagster.lib.piwebapi.schema import UTC_US, VALUES_SCHEMA
from osipi_dagster.lib.streaming.spool import SpoolReader, to_us

log = logging.getLogger(__name__)

TIMESERIES_TABLE = "pi_timeseries"
KEY = ("web_id", "timestamp", "ordinal")
STREAM_SOURCE = "stream"
# Same columns as the recorded landing (docs/tables.md) plus `source`; Delta merges by column name.
STREAMED_SCHEMA = pl.Schema(
    {**VALUES_SCHEMA, "tag": pl.Utf8, "ingested_at": UTC_US, "date": pl.Date, "source": pl.Utf8}
)
MERGE_ATTEMPTS = 6


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


def _quantiles(values: pl.Series) -> tuple[float | None, float | None]:
    if values.is_empty():
        return None, None
    secs = values.cast(pl.Float64) / 1e6
    return round(float(secs.quantile(0.5, "linear")), 3), round(float(secs.quantile(0.95, "linear")), 3)


def reconciled_hours(ref: DeltaTableRef, frame: pl.DataFrame) -> pl.Series:
    """UTC hours of `frame` for which the table already holds archive rows: those windows were replaced by the
    recorded partition, which is the truth there, so streamed rows must not be added to them."""
    if not ref.exists() or frame.is_empty():
        return pl.Series("hour", [], dtype=UTC_US)
    lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    scan = ref.scan().filter(
        pl.col("date").is_in(frame["date"].unique().implode())
        & (pl.col("timestamp") >= pl.lit(lo, dtype=UTC_US).dt.truncate("1h"))
        & (pl.col("timestamp") <= hi)
    )
    # Rows written before the `source` column existed can only come from the recorded landing.
    if "source" in ref.schema().names:
        scan = scan.filter(pl.col("source").is_null() | (pl.col("source") != STREAM_SOURCE))
    return scan.select(pl.col("timestamp").dt.truncate("1h").alias("hour")).unique().collect()["hour"]


def insert_absent(ref: DeltaTableRef, frame: pl.DataFrame, *, label: str) -> tuple[int, int | None]:
    """Insert rows whose key is not in the table yet (one commit); returns (rows inserted, Delta version).

    An existing row always wins, so a replayed segment or an overlap with archive rows inserts nothing.
    """
    if frame.is_empty():
        return 0, None
    if not ref.exists():
        result = ref.append(frame, partition_by=["date"])
        return frame.height, result.version
    source = pa.table(frame.to_arrow())
    dates = ", ".join(f"'{d.isoformat()}'" for d in sorted(frame["date"].unique().to_list()))
    lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    # Partition and timestamp bounds on the target let delta-rs prune to the files that can hold these keys.
    predicate = (
        f"t.date IN ({dates}) AND t.timestamp >= {timestamp_literal(lo)} "
        f"AND t.timestamp <= {timestamp_literal(hi)} AND " + " AND ".join(f"t.{k} = s.{k}" for k in KEY)
    )
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            metrics = (
                ref.delta()
                .merge(
                    source,
                    predicate,
                    source_alias="s",
                    target_alias="t",
                    merge_schema=True,
                    commit_properties=CommitProperties(custom_metadata={"osipi.stream_batch": label}),
                )
                .when_not_matched_insert_all()
                .execute()
            )
        except CommitFailedError as exc:
            # A concurrent commit (e.g. the hourly replace) touched the same files: re-read and retry.
            if attempt == MERGE_ATTEMPTS:
                raise LakeConflictError(
                    f"streamed batch {label} lost the commit race {attempt} times on {ref.uri}: {exc}"
                ) from exc
            time.sleep(random.uniform(0.05, 0.2 * attempt))
            continue
        inserted = int(metrics.get("num_target_rows_inserted", 0))
        version = ref.version() if inserted else None
        return inserted, version
    raise AssertionError("unreachable")


def land_segments(
    lake: Lake,
    spool: SpoolReader,
    names: Sequence[str],
    *,
    table: str = TIMESERIES_TABLE,
    ingested_at: datetime | None = None,
) -> LandingReport:
    """Land exactly these spool segments into `table`, then mark them landed.

    Idempotent by segment: replaying a landed segment inserts nothing (every key is present, or its hour has
    since been replaced from the archive). A segment already pruned from the spool was landed long ago: skipped.
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
        done = reconciled_hours(ref, rows)
        keep = rows.filter(~pl.col("timestamp").dt.truncate("1h").is_in(done.implode()))
        report.superseded_by_archive = rows.height - keep.height
        label = f"{names[0]}..{names[-1]}"
        report.inserted, report.delta_version = insert_absent(
            ref, keep.select(list(STREAMED_SCHEMA)).cast(dict(STREAMED_SCHEMA)), label=label
        )
        report.already_present = keep.height - report.inserted
        report.first_timestamp, report.last_timestamp = keep["timestamp"].min(), keep["timestamp"].max()
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
