"""Derived reads into the lake: PI's interpolated values and summaries per interval, read from PI hour by hour.

Both tables are written like pi_timeseries (replace the run's window, one commit) and keyed by the interval's start,
so an hour's rows are exactly the intervals that start in it. Boundary rules (docs/derived.md):

* Interpolated values are asked from the hour's start to its last interval start, inclusive: the value at the
  hour's end is the next hour's first one.
* Summaries of an hour are asked per `summary_interval` over [hour, hour + 1h). Time-weighted bases interpolate at
  both ends, so boundary events need no rule. With EventWeighted and several ascending intervals each interval holds
  its start only, [start, end), which is what one long call answers too; a 1h interval (one interval per call)
  would hold both ends, so it is asked with EventWeightedExcludeMostRecentEvent, PI's [start, end) for any layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import SUMMARY_SCHEMA, UTC_US, VALUES_SCHEMA
from osipi_dagster.lib.piwebapi.summaries import HALF_OPEN_BASIS
from osipi_dagster.lib.quality.window import NUMERIC_POINT_TYPES

INTERPOLATED_TABLE = "interpolated_values"
SUMMARY_TABLE = "summary_values"
DERIVED_TABLES = (INTERPOLATED_TABLE, SUMMARY_TABLE)
READ_CHUNK = timedelta(hours=1)

INTERPOLATED_SCHEMA = pl.Schema(
    {
        **{k: v for k, v in VALUES_SCHEMA.items() if k != "ordinal"},
        "tag": pl.Utf8,
        "interval": pl.Utf8,
        "ingested_at": UTC_US,
        "date": pl.Date,
    }
)
SUMMARIES_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "tag": pl.Utf8,
        "summary_type": pl.Utf8,
        "interval_start": UTC_US,
        "interval_end": UTC_US,
        **{k: v for k, v in SUMMARY_SCHEMA.items() if k not in ("web_id", "summary_type")},
        "calculation_basis": pl.Utf8,
        "interval": pl.Utf8,
        "ingested_at": UTC_US,
        "date": pl.Date,
    }
)
# The column each table's window (and Delta `date`) is taken from, and its unique key.
WINDOW_COLUMN = {INTERPOLATED_TABLE: "timestamp", SUMMARY_TABLE: "interval_start"}
KEYS = {
    INTERPOLATED_TABLE: ["web_id", "timestamp"],
    SUMMARY_TABLE: ["web_id", "summary_type", "interval_start"],
}
SCHEMAS = {INTERPOLATED_TABLE: INTERPOLATED_SCHEMA, SUMMARY_TABLE: SUMMARIES_SCHEMA}


class DerivedReadError(RuntimeError):
    """PI answered a derived read with a shape the table cannot hold (e.g. missing intervals)."""


@dataclass(frozen=True)
class DerivedRead:
    """One derived table's read: which table, its interval, and for summaries the types and basis."""

    table: str
    step: timedelta
    interval: str
    summary_types: tuple[str, ...] = ()
    calculation_basis: str = "TimeWeighted"

    def per_hour(self) -> int:
        return int(READ_CHUNK / self.step)

    def basis_asked(self) -> str:
        """The basis sent to PI: EventWeighted over one interval per call would hold both ends (see module doc)."""
        if self.calculation_basis == "EventWeighted" and self.per_hour() == 1:
            return HALF_OPEN_BASIS
        return self.calculation_basis

    def eligible(self, tags: pl.DataFrame) -> pl.DataFrame:
        """Tags this read asks for: summaries of numeric points only (PI refuses Average or Total on others)."""
        if self.table == SUMMARY_TABLE:
            return tags.filter(pl.col("point_type").is_in(NUMERIC_POINT_TYPES))
        return tags


@dataclass
class DerivedStats:
    """Figures of one landing: rows, good rows, rows per tag (for completeness), first preview."""

    rows: int = 0
    good: int = 0
    per_tag: dict[str, int] = field(default_factory=dict)
    preview: pl.DataFrame | None = None


def hours(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out, t = [], start
    while t < end:
        out.append((t, min(t + READ_CHUNK, end)))
        t += READ_CHUNK
    return out


def read_interpolated(client: PIWebAPIClient, ids: list[str], read: DerivedRead, a: datetime, b: datetime):
    """PI's interpolated values of [a, b): every interval start, the one at `b` left to the next window."""
    frame = client.interpolated(ids, a, b - read.step, read.step)
    return frame.filter((pl.col("timestamp") >= a) & (pl.col("timestamp") < b)).drop("ordinal")


def read_summaries(client: PIWebAPIClient, ids: list[str], read: DerivedRead, a: datetime, b: datetime):
    """PI's summaries per interval of [a, b), each row given its interval's start and end by position: with
    timeType Auto a Minimum or Maximum is stamped with its value's time, not the interval's."""
    frame = client.summary(
        ids, a, b, list(read.summary_types), read.step, calculation_basis=read.basis_asked()
    )
    n = int((b - a) / read.step)
    index = pl.int_range(pl.len()).over("web_id", "summary_type")
    frame = frame.with_columns(index.alias("_i"))
    counts = frame.group_by("web_id", "summary_type").agg(pl.len().alias("n")).filter(pl.col("n") != n)
    if counts.height:
        row = counts.row(0, named=True)
        raise DerivedReadError(
            f"PI answered {row['n']} {row['summary_type']} intervals for {row['web_id']} over "
            f"{a:%Y-%m-%dT%H:%M}..{b:%H:%M}Z, expected {n} of {read.interval}."
        )
    start = pl.lit(a, dtype=UTC_US) + pl.duration(
        microseconds=pl.col("_i") * int(read.step / timedelta(microseconds=1))
    )
    return frame.with_columns(
        start.alias("interval_start"),
        (start + pl.duration(microseconds=int(read.step / timedelta(microseconds=1)))).alias("interval_end"),
        pl.lit(read.calculation_basis, dtype=pl.Utf8).alias("calculation_basis"),
    ).drop("_i")


def derived_frames(
    client: PIWebAPIClient,
    read: DerivedRead,
    tags: pl.DataFrame,
    *,
    start: datetime,
    end: datetime,
    ingested_at: datetime,
    stats: DerivedStats,
) -> Iterator[pl.DataFrame]:
    """The landed rows of [start, end), one frame per hour, with tag names and landing columns; `stats` filled."""
    asked = read.eligible(tags)
    ids = asked["web_id"].to_list()
    names = asked.select("web_id", "tag")
    schema = SCHEMAS[read.table]
    reader = read_interpolated if read.table == INTERPOLATED_TABLE else read_summaries
    emitted = False
    for a, b in hours(start, end) if ids else []:
        frame = reader(client, ids, read, a, b)
        if frame.height == 0:
            continue
        landed = (
            frame.join(names, on="web_id", how="left", maintain_order="left")
            .with_columns(
                pl.lit(read.interval, dtype=pl.Utf8).alias("interval"),
                pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
                pl.col(WINDOW_COLUMN[read.table]).dt.date().alias("date"),
            )
            .select(list(schema))
            .cast(dict(schema))
        )
        stats.rows += landed.height
        stats.good += int(landed["good"].sum())
        for web_id, n in landed.group_by("web_id").len().iter_rows():
            stats.per_tag[web_id] = stats.per_tag.get(web_id, 0) + n
        if stats.preview is None:
            stats.preview = landed.head(5)
        emitted = True
        yield landed
    if not emitted:
        yield pl.DataFrame(schema=schema)


def expected_rows(read: DerivedRead, start: datetime, end: datetime) -> int:
    """Rows per tag a complete window holds."""
    return int((end - start) / read.step) * max(1, len(read.summary_types))


def window_scan(ref: DeltaTableRef, table: str, start: datetime, end: datetime, version: int | None = None):
    """The landed rows of [start, end) (latest or a given version), lazily, date-pruned."""
    if not ref.exists():
        return pl.LazyFrame(schema=SCHEMAS[table])
    column = WINDOW_COLUMN[table]
    days = pl.date_range(start.date(), (end - timedelta(microseconds=1)).date(), eager=True)
    return ref.scan(version).filter(
        pl.col("date").is_in(days.implode()) & (pl.col(column) >= start) & (pl.col(column) < end)
    )


def content(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The comparable part of landed rows: key, value, text and status, sorted."""
    cols = [*KEYS[table], "value", "value_text", "good"]
    return frame.select(cols).sort(KEYS[table])


def changed_rows(before: pl.DataFrame, after: pl.DataFrame, table: str) -> dict[str, int]:
    """Rows inserted, deleted and changed between two versions of a window (small: intervals × tags)."""
    key = KEYS[table]
    b, a = content(before, table), content(after, table)
    joined = b.join(a, on=key, how="full", suffix="_new", coalesce=True, nulls_equal=True)
    present_before = pl.col("good").is_not_null()
    present_after = pl.col("good_new").is_not_null()
    inserted = joined.filter(~present_before & present_after).height
    deleted = joined.filter(present_before & ~present_after).height
    differs = (
        pl.col("value").ne_missing(pl.col("value_new"))
        | pl.col("value_text").ne_missing(pl.col("value_text_new"))
        | pl.col("good").ne_missing(pl.col("good_new"))
    )
    changed = joined.filter(present_before & present_after & differs).height
    return {"rows_inserted": inserted, "rows_deleted": deleted, "rows_changed": changed}


def stale_hours(
    client: PIWebAPIClient,
    ref: DeltaTableRef,
    read: DerivedRead,
    tags: pl.DataFrame,
    hours_to_audit: Sequence[datetime],
    *,
    tolerance: float = 1e-9,
) -> list[datetime]:
    """Landed hours whose rows differ from what PI answers now (late or edited archive data): the hours to re-land.

    Values are compared with a relative `tolerance` (PI's arithmetic is not bit-stable across calls)."""
    ids = read.eligible(tags)["web_id"].to_list()
    reader = read_interpolated if read.table == INTERPOLATED_TABLE else read_summaries
    found = []
    for hour in sorted(hours_to_audit):
        end = hour + READ_CHUNK
        lake = window_scan(ref, read.table, hour, end).filter(pl.col("web_id").is_in(ids)).collect()
        if lake.height == 0:
            continue  # never landed: the schedule's, not a repair
        pi = reader(client, ids, read, hour, end)
        key = KEYS[read.table]
        joined = content(lake, read.table).join(
            content(pi, read.table), on=key, how="full", suffix="_pi", coalesce=True, nulls_equal=True
        )
        scale = pl.max_horizontal(pl.col("value").abs(), pl.col("value_pi").abs(), pl.lit(1.0))
        value_differs = (pl.col("value") - pl.col("value_pi")).abs() > tolerance * scale
        differs = (
            value_differs.fill_null(False)
            | pl.col("value").is_null().ne(pl.col("value_pi").is_null())
            | pl.col("value_text").ne_missing(pl.col("value_text_pi"))
            | pl.col("good").ne_missing(pl.col("good_pi"))
        )
        if joined.filter(differs).height:
            found.append(hour)
    return found
