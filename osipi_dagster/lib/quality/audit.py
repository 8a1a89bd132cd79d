"""Late-data audit arithmetic: per (tag, hour) counts, totals and checksums of lake rows and of PI reads, their
comparison, and the row-level difference a repair made (inserted / deleted / changed rows and their lateness).

Memory is bounded by tags x hours (checksums) plus one batch of changed cells (row diffs), never by a whole window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from osipi_dagster.lib.quality.histogram import LogHistogram
from osipi_dagster.lib.quality.window import COMPACT_EVERY, good_expr

# What a recorded value is, for checksums: its key plus everything PI can edit (value, text, state, flags).
CONTENT = [
    "timestamp",
    "ordinal",
    "value",
    "value_text",
    "digital_code",
    "is_system",
    "good",
    "questionable",
    "substituted",
    "annotated",
]
KEY = ["web_id", "timestamp", "ordinal"]
HOUR_STATS_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "hour": pl.Datetime("us", "UTC"),
        "rows": pl.Int64,
        "good_count": pl.Int64,
        "good_total": pl.Float64,
        "checksum": pl.UInt64,
    }
)
# Relative tolerance when comparing PI's summary Total with the lake's sum: both add the same float64 values, but
# in different orders.
TOTAL_RTOL = 1e-9


def row_hash() -> pl.Expr:
    # A fixed seed so lake rows and PI rows hash alike within one process (the comparison never crosses processes).
    return pl.struct(CONTENT).hash(0x0517)


def hour_stats(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Recorded rows (VALUES_SCHEMA columns at least) → HOUR_STATS_SCHEMA: rows, PI-style good count and total,
    and an order-independent checksum (XOR of row hashes; keys are unique, so equal rows never cancel).

    A LazyFrame (e.g. a Delta scan) is aggregated without materializing its rows.
    """
    return (
        frame.lazy()
        .with_columns(pl.col("timestamp").dt.truncate("1h").alias("hour"), row_hash().alias("h"))
        .group_by("web_id", "hour")
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            good_expr().sum().cast(pl.Int64).alias("good_count"),
            pl.col("value").filter(good_expr()).sum().alias("good_total"),
            pl.col("h").bitwise_xor().alias("checksum"),
        )
        .select(list(HOUR_STATS_SCHEMA))
        .collect(engine="streaming")
        .cast(dict(HOUR_STATS_SCHEMA))  # type: ignore[arg-type]
        .sort("web_id", "hour")
    )


def merge_hour_stats(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Combine HOUR_STATS_SCHEMA frames computed on disjoint row sets (e.g. pages of one read)."""
    if not parts:
        return pl.DataFrame(schema=HOUR_STATS_SCHEMA)
    return (
        pl.concat(parts)
        .group_by("web_id", "hour")
        .agg(
            pl.col("rows").sum(),
            pl.col("good_count").sum(),
            pl.col("good_total").sum(),
            pl.col("checksum").bitwise_xor(),
        )
        .select(list(HOUR_STATS_SCHEMA))
        .sort("web_id", "hour")
    )


@dataclass
class HourStatsAccumulator:
    """hour_stats of a stream of disjoint pages, folded every COMPACT_EVERY pages: one row per (tag, hour)."""

    _parts: list[pl.DataFrame] = field(default_factory=list)

    def add(self, page: pl.DataFrame) -> None:
        if page.height:
            self._parts.append(hour_stats(page))
        if len(self._parts) >= COMPACT_EVERY:
            self._parts = [merge_hour_stats(self._parts)]

    def result(self) -> pl.DataFrame:
        return merge_hour_stats(self._parts)


def summary_per_hour(summary: pl.DataFrame, start: datetime) -> pl.DataFrame:
    """PI summaries requested with summaryDuration=1h from `start` (SUMMARY_SCHEMA) → web_id, hour, pi_count,
    pi_total. Hours are assigned by position within each stream and type (intervals come in order), so the result
    does not depend on which time PI stamps a summary with. To compare with the lake's half-open hours the request
    must be half-open too (EventWeightedExcludeMostRecentEvent): which hour holds a value stamped on a boundary is
    the basis's choice, not this function's."""
    if summary.height == 0:
        return pl.DataFrame(
            schema={
                "web_id": pl.Utf8,
                "hour": pl.Datetime("us", "UTC"),
                "pi_count": pl.Int64,
                "pi_total": pl.Float64,
            }
        )
    indexed = summary.with_columns(pl.int_range(pl.len()).over("web_id", "summary_type").alias("i"))
    hour = (pl.lit(start, dtype=pl.Datetime("us", "UTC")) + pl.duration(hours=pl.col("i"))).alias("hour")
    counts = indexed.filter(pl.col("summary_type") == "Count").select(
        "web_id", hour, pl.col("value").round(0).cast(pl.Int64).fill_null(0).alias("pi_count")
    )
    totals = indexed.filter((pl.col("summary_type") == "Total") & pl.col("good")).select(
        "web_id", hour, pl.col("value").alias("pi_total")
    )
    return counts.join(totals, on=["web_id", "hour"], how="left")


def count_mismatches(lake: pl.DataFrame, pi: pl.DataFrame) -> pl.DataFrame:
    """(web_id, hour) where PI's good Count, or Total (numeric tags), differs from the lake's.

    `lake`: HOUR_STATS_SCHEMA rows; `pi`: summary_per_hour rows (one per audited tag and hour, zero counts too).
    """
    joined = pi.join(
        lake.select("web_id", "hour", "good_count", "good_total"), on=["web_id", "hour"], how="left"
    )
    joined = joined.with_columns(pl.col("good_count").fill_null(0), pl.col("good_total").fill_null(0.0))
    total_differs = pl.col("pi_total").is_not_null() & (
        (pl.col("pi_total") - pl.col("good_total")).abs()
        > TOTAL_RTOL * pl.max_horizontal(pl.col("pi_total").abs(), pl.lit(1.0))
    )
    return (
        joined.filter((pl.col("pi_count") != pl.col("good_count")) | total_differs)
        .with_columns(
            pl.when(pl.col("pi_count") != pl.col("good_count"))
            .then(pl.lit("count"))
            .otherwise(pl.lit("total"))
            .alias("reason")
        )
        .select("web_id", "hour", "reason", pl.col("good_count").alias("lake_count"), "pi_count")
        .sort("hour", "web_id")
    )


def checksum_mismatches(lake: pl.DataFrame, pi: pl.DataFrame) -> pl.DataFrame:
    """(web_id, hour) whose rows differ between the lake and a fresh PI read (both HOUR_STATS_SCHEMA).

    Pairs missing on one side count as mismatches (a tag that gained its first value, or lost its last one).
    """
    cols = ["web_id", "hour", "rows", "checksum"]
    joined = lake.select(cols).join(
        pi.select(cols), on=["web_id", "hour"], how="full", coalesce=True, suffix="_pi"
    )
    return (
        joined.filter(
            pl.col("checksum").is_null()
            | pl.col("checksum_pi").is_null()
            | (pl.col("checksum") != pl.col("checksum_pi"))
            | (pl.col("rows") != pl.col("rows_pi"))
        )
        .select(
            "web_id",
            "hour",
            pl.lit("checksum").alias("reason"),
            pl.col("rows").fill_null(0).alias("lake_rows"),
            pl.col("rows_pi").fill_null(0).alias("pi_rows"),
        )
        .sort("hour", "web_id")
    )


@dataclass(frozen=True)
class RowDiff:
    """How a rewrite of a window changed it, and how late the rows that appeared arrived (p50 within the
    LogHistogram error bound, max exact)."""

    inserted: int
    deleted: int
    changed: int
    unchanged: int
    tags_changed: list[str]
    lateness_p50_s: float | None
    lateness_max_s: float | None

    @property
    def rows_changed(self) -> int:
        return self.inserted + self.deleted + self.changed


@dataclass
class DiffTally:
    """A repair's row diff, accumulated over batches of changed (tag, hour) cells plus the rows of unchanged
    cells, so only the cells that changed are ever read row by row."""

    ingested_at: datetime
    inserted: int = 0
    deleted: int = 0
    changed: int = 0
    unchanged: int = 0
    tags: set[str] = field(default_factory=set)
    lateness: LogHistogram = field(default_factory=LogHistogram)

    def add(self, before: pl.DataFrame, after: pl.DataFrame) -> None:
        """Row-level diff of one batch: the same cells' rows before and after the rewrite (KEY + CONTENT)."""

        def keyed(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.select(*KEY, row_hash().alias("h"))

        joined = keyed(before).join(keyed(after), on=KEY, how="full", coalesce=True, suffix="_new")
        inserted = joined.filter(pl.col("h").is_null())
        deleted = joined.filter(pl.col("h_new").is_null())
        changed = joined.filter(
            pl.col("h").is_not_null() & pl.col("h_new").is_not_null() & (pl.col("h") != pl.col("h_new"))
        )
        self.inserted += inserted.height
        self.deleted += deleted.height
        self.changed += changed.height
        self.unchanged += joined.height - inserted.height - deleted.height - changed.height
        for part in (inserted, deleted, changed):
            self.tags.update(part["web_id"].unique().to_list())
        if inserted.height:
            # Lateness of an inserted row = ingestion time - its timestamp: how long a buffer held it (at most).
            ingested_us = int(self.ingested_at.timestamp() * 1_000_000)
            ts_us = inserted["timestamp"].dt.epoch("us").to_numpy()
            self.lateness.add((ingested_us - ts_us).astype(np.float64) / 1e6)

    def result(self) -> RowDiff:
        return RowDiff(
            inserted=self.inserted,
            deleted=self.deleted,
            changed=self.changed,
            unchanged=self.unchanged,
            tags_changed=sorted(self.tags),
            lateness_p50_s=self.lateness.quantile(0.5),
            lateness_max_s=self.lateness.max,
        )


def row_diff(before: pl.DataFrame, after: pl.DataFrame, ingested_at: datetime) -> RowDiff:
    """Compare the window's rows before and after a rewrite by key (one batch of DiffTally)."""
    tally = DiffTally(ingested_at)
    tally.add(before, after)
    return tally.result()


def changed_cells(before: pl.DataFrame, after: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """(web_id, hour, rows) of the (tag, hour) cells whose checksum or row count differs between two
    HOUR_STATS_SCHEMA frames (rows = before + after, the cost of diffing the cell), and the rows of the cells that
    are identical (their rows count as unchanged without being read)."""
    cells = checksum_mismatches(before, after).select(
        "web_id", "hour", (pl.col("lake_rows") + pl.col("pi_rows")).alias("rows")
    )
    same = before.join(cells.select("web_id", "hour"), on=["web_id", "hour"], how="anti")
    return cells, int(same["rows"].sum())


def cell_batches(cells: pl.DataFrame, max_rows: int) -> list[pl.DataFrame]:
    """Split changed cells (web_id, hour, rows) into batches of whole tags holding at most `max_rows` rows each
    (a single tag bigger than that is its own batch, split by hour)."""
    per_tag = cells.group_by("web_id").agg(pl.col("rows").sum()).sort("web_id")
    batches: list[pl.DataFrame] = []
    current: list[str] = []
    size = 0
    for web_id, rows in per_tag.iter_rows():
        if rows > max_rows:
            tag_cells = cells.filter(pl.col("web_id") == web_id).sort("hour")
            batches += [tag_cells.slice(i, 1) for i in range(tag_cells.height)]
            continue
        if current and size + rows > max_rows:
            batches.append(cells.filter(pl.col("web_id").is_in(current)))
            current, size = [], 0
        current.append(web_id)
        size += rows
    if current:
        batches.append(cells.filter(pl.col("web_id").is_in(current)))
    return batches


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Hour starts in [start, end)."""
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out
