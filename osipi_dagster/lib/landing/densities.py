"""Tag densities kept between runs: one row per tag (values per hour, and when observed) in a small Delta table, so a
range run plans its reads from them instead of probing an hour first (lib/landing/recorded.hourly_pages).

A stored density is a hint, never a promise: the client cuts each stream at its share of MaxReturnedItemsPerCall
and continues it, so a density too low costs continuations and one too high costs calls, never values. Each
successful run upserts what it observed (last write wins), so a wrong density lasts one run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef, WriteResult
from osipi_dagster.lib.piwebapi.schema import UTC_US

DENSITIES_TABLE = "pi_read_densities"
DENSITIES_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "values_per_hour": pl.Float64,
        "observed_hours": pl.Float64,  # length of the window the density was observed on
        "observed_at": UTC_US,  # when the run that observed it started
    }
)
# A stored density is rewritten when it is new, or when the new observation differs by more than this share and by
# more than counting noise (3 standard deviations of a Poisson count over the observed window): runs on steady
# tags, and hourly runs of sparse tags whose counts merely fluctuate, write nothing.
CHANGE = 0.25


def stored_densities(ref: DeltaTableRef, web_ids: Sequence[str]) -> dict[str, float]:
    """The stored densities of `web_ids` in recorded values per second (the client's unit); tags without one are
    absent. Nothing when the table does not exist yet."""
    if not web_ids or not ref.exists():
        return {}
    ids = pl.Series(list(web_ids), dtype=pl.Utf8)
    rows = (
        ref.scan()
        .filter(pl.col("web_id").is_in(ids.implode()))
        .select("web_id", pl.col("values_per_hour") / 3600.0)
        .collect()
    )
    return {w: d for w, d in rows.iter_rows() if d is not None and math.isfinite(d) and d >= 0}


def observed_densities(
    counts: pl.DataFrame, start: datetime, end: datetime, observed_at: datetime
) -> pl.DataFrame:
    """DENSITIES_SCHEMA rows from a run's values per tag (`web_id`, `rows`) over [start, end)."""
    hours = (end - start).total_seconds() / 3600.0
    if hours <= 0:
        raise ValueError(f"densities need a window of positive length, got {start} .. {end}")
    return counts.select(
        pl.col("web_id").cast(pl.Utf8),
        (pl.col("rows").cast(pl.Float64) / hours).alias("values_per_hour"),
        pl.lit(hours, dtype=pl.Float64).alias("observed_hours"),
        pl.lit(observed_at, dtype=UTC_US).alias("observed_at"),
    ).unique("web_id", keep="last", maintain_order=True)


def changed(observed: pl.DataFrame, known: Mapping[str, float]) -> pl.DataFrame:
    """The rows of `observed` worth writing: tags without a stored density (values per second in `known`), or
    whose density moved by more than CHANGE and by more than counting noise."""
    before = pl.DataFrame(
        {"web_id": list(known), "_before": [v * 3600.0 for v in known.values()]},
        schema={"web_id": pl.Utf8, "_before": pl.Float64},
    )
    now, was, hours = pl.col("values_per_hour"), pl.col("_before"), pl.col("observed_hours")
    top = pl.max_horizontal(now, was)
    noise = 3 * (top * hours).sqrt() + 1  # in values over the observed window
    moved = ((now - was).abs() > CHANGE * top) & ((now - was).abs() * hours > noise)
    return (
        observed.join(before, on="web_id", how="left", maintain_order="left")
        .filter(was.is_null() | moved)
        .drop("_before")
    )


def remember_densities(
    ref: DeltaTableRef, observed: pl.DataFrame, known: Mapping[str, float] | None = None
) -> WriteResult | None:
    """Upsert by web_id the observed densities that are new or changed against `known` (what the run read from the
    table); None when nothing changed. One row per tag: the table's size is the number of tags ever read."""
    rows = changed(observed, known or {}).select(list(DENSITIES_SCHEMA))
    if rows.height == 0:
        return None
    return ref.upsert(rows, key=["web_id"])
