"""Late-data audit arithmetic: per (tag, hour) counts, totals and checksums of lake rows and of PI reads, their
comparison, and the row-level difference a repair made (inserted / deleted / changed rows and their lateness).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from osipi_dagster.lib.quality.window import good_expr

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
        .collect()
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


def summary_per_hour(summary: pl.DataFrame, start: datetime) -> pl.DataFrame:
    """PI summaries requested with summaryDuration=1h from `start` (SUMMARY_SCHEMA) → web_id, hour, pi_count,
    pi_total. Hours are assigned by position within each stream and type (intervals come in order), so the result
    does not depend on which time PI stamps a summary with."""
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
    """How a rewrite of a window changed it, and how late the rows that appeared arrived."""

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


def row_diff(before: pl.DataFrame, after: pl.DataFrame, ingested_at: datetime) -> RowDiff:
    """Compare the window's rows before and after a rewrite by key. Lateness of an inserted row = when it was
    ingested minus its timestamp: for a backdated value that is how long the PI buffer held it (at most)."""

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(*KEY, row_hash().alias("h"))

    joined = keyed(before).join(keyed(after), on=KEY, how="full", coalesce=True, suffix="_new")
    inserted = joined.filter(pl.col("h").is_null())
    deleted = joined.filter(pl.col("h_new").is_null())
    changed = joined.filter(
        pl.col("h").is_not_null() & pl.col("h_new").is_not_null() & (pl.col("h") != pl.col("h_new"))
    )
    tags = pl.concat([inserted["web_id"], deleted["web_id"], changed["web_id"]]).unique().sort().to_list()
    late = (
        pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")) - inserted["timestamp"]
    ).dt.total_microseconds()
    late_s = inserted.select(late / 1e6).to_series() if inserted.height else pl.Series([], dtype=pl.Float64)
    return RowDiff(
        inserted=inserted.height,
        deleted=deleted.height,
        changed=changed.height,
        unchanged=joined.height - inserted.height - deleted.height - changed.height,
        tags_changed=tags,
        lateness_p50_s=float(late_s.median()) if late_s.len() else None,  # type: ignore[arg-type]
        lateness_max_s=float(late_s.max()) if late_s.len() else None,  # type: ignore[arg-type]
    )


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Hour starts in [start, end)."""
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out


def lateness_profile(timestamps: pl.Series, ingested_at: datetime) -> dict[str, float]:
    """Seconds between each value's timestamp and its ingestion (p50, p95, max): for an on-time hourly run this is
    the schedule's lag plus the hour; values far above it arrived late (buffered) or were backfilled."""
    if timestamps.len() == 0:
        return {}
    ages = (pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")) - pl.col("t")).dt.total_microseconds() / 1e6
    s = pl.DataFrame({"t": timestamps}).select(ages.alias("age")).to_series()
    return {
        "p50": round(float(s.quantile(0.5)), 3),  # type: ignore[arg-type]
        "p95": round(float(s.quantile(0.95)), 3),  # type: ignore[arg-type]
        "max": round(float(s.max()), 3),  # type: ignore[arg-type]
    }
