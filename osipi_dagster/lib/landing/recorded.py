"""Recorded values into pi_timeseries: PI pages read hour by hour, landed in the window with their figures, and
the archive rows of a window read back lazily.

A window's landing is one stream of frames for one Delta commit; what went through it is gathered on the fly in
memory bounded per tag (`LandingStats`), so nothing re-reads the table to describe it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef, extra_predicate_expr
from osipi_dagster.lib.landing.progress import Progress
from osipi_dagster.lib.landing.tables import SHARDED_TIMESERIES_SCHEMA, SOURCE_RECORDED, TIMESERIES_SCHEMA
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import UTC_US
from osipi_dagster.lib.quality import HourStatsAccumulator, LogHistogram, WindowProfile
from osipi_dagster.lib.quality.window import tag_runs

# The first READ_CHUNK of a run's range is read alone, to learn the density (values per second) of each tag without
# a stored one (lib/landing/densities); the rest of the range is then one read that the client plans from the
# densities: each stream group in the fewest calls that stay under READ_VALUES_PER_CALL (with headroom).
# Unplanned, the client would read a whole 24-hour range as
# one window per group (measured: peak RSS 965 MiB for 6 h of 10,000 tags vs 401 MiB for 1 h, client alone);
# planned, a frame holds at most one call's worth of values whatever the range length, so peak memory stays flat.
# Reading hour by hour instead cost 24 calls per group and day (a run of 1,000 tags × 1 day: 253 HTTP calls, now 75).
READ_CHUNK = timedelta(hours=1)
# Values per planned call after the probe: with 8 calls in flight (their parsed bodies) and 16 frames queued, frames
# of a full call's worth (~125,000 values) took the Dagster run of 10,000 tags × 1 day to 2,023 MiB peak RSS.
READ_VALUES_PER_CALL = 50_000

# Which rows a run replaces beyond its time window: None (every row), the run's web ids, or a predicate matching
# nothing ("false").
Scope = dict[str, list[str]] | str | None


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


def hourly_pages(
    client: PIWebAPIClient,
    ids: list[str],
    start: datetime,
    end: datetime,
    progress: Progress,
    known: Mapping[str, float] | None = None,
) -> Iterator[pl.DataFrame]:
    """Every recorded value of `ids` in [start, end), each tag in time order, in as few calls of at most
    READ_VALUES_PER_CALL expected values as the tags' densities allow.

    `known` are densities (values per second) stored by earlier runs (lib/landing/densities); the client also
    keeps what it learned. Tags with a density are planned over the whole range at once; the others are read on
    the first READ_CHUNK alone (the probe), then over the rest of the range from what the probe taught the client.
    Restarts `progress` with the planned page total; a read whose plan changed by then (after the probe) corrects
    the total when it starts."""
    if known:
        client.seed_densities(known)
    chunks: list[tuple[list[str], datetime, datetime]] = []
    if ids and start < end:
        planned = client.densities(ids)
        unknown = [w for w in ids if w not in planned]
        dense = [w for w in ids if w in planned]
        probe = min(start + READ_CHUNK, end)
        if unknown:
            chunks.append((unknown, start, probe))
        if dense:
            chunks.append((dense, start, end))
        if unknown and probe < end:
            chunks.append((unknown, probe, end))
    estimates = [client.plan_recorded(w, a, b, READ_VALUES_PER_CALL) for w, a, b in chunks]
    progress.restart(sum(estimates))

    def read() -> Iterator[pl.DataFrame]:
        for (w, a, b), estimate in zip(chunks, estimates, strict=True):
            plan = client.plan_recorded(w, a, b, READ_VALUES_PER_CALL)
            progress.total_pages = (progress.total_pages or 0) + plan - estimate
            yield from client.iter_recorded(w, a, b, values_per_call=READ_VALUES_PER_CALL)

    return progress.track(read())


def land_values(
    pages: Iterable[pl.DataFrame],
    tags: pl.DataFrame,
    *,
    start: datetime,
    end: datetime,
    ingested_at: datetime,
    stats: LandingStats,
    shard: str | None = None,
) -> Iterator[pl.DataFrame]:
    """Client pages → landed rows: half-open window [start, end), tag name joined, landing columns added (and the
    `shard` column when a sharded run lands its shard's tags).

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
    schema = TIMESERIES_SCHEMA
    if shard is not None:
        schema = SHARDED_TIMESERIES_SCHEMA
        landing.append(pl.lit(shard, dtype=pl.Utf8).alias("shard"))
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
        landed = joined.with_columns(landing).select(list(schema))
        if landed.schema != schema:
            landed = landed.cast(dict(schema))
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
        yield pl.DataFrame(schema=schema)


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


def owned_rows(ids: list[str], tag_filter: str, shard: str | None = None) -> Scope:
    """The replace predicate beyond the time window: None (every row) when PI_TAG_FILTER is "*", else the run's
    web ids, or a predicate matching nothing when the filter matched no tag. A sharded run (`shard`) owns its
    shard's partition only: `shard = 'i'`, and its web ids there with a tag filter."""
    if tag_filter.strip() == "*":
        return None if shard is None else {"shard": shard}
    if not ids:
        return "false"
    return {"web_id": ids} if shard is None else {"shard": shard, "web_id": ids}


def scoped(scan: pl.LazyFrame, scope: Scope) -> pl.LazyFrame:
    """`scan` limited to the rows a run with `scope` (see owned_rows) replaces: the lake's own reading of it."""
    where = extra_predicate_expr(scope)
    return scan if where is None else scan.filter(where)
