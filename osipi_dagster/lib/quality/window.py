"""Data quality profile of one landed pi_timeseries window, accumulated page by page while the window streams in,
and the per-tag key-order guard that stops duplicate keys before they reach the lake.

Bounded memory whatever the window length: one aggregate row per tag, one per system-state name, one last key per tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from osipi_dagster.lib.quality.config import QualityThresholds

NUMERIC_POINT_TYPES = ("Float16", "Float32", "Float64", "Int16", "Int32")
# Columns of the point catalogue the profile needs (pi_points current rows).
POINT_COLUMNS = ["web_id", "tag", "point_type", "span", "zero"]
KEY = ["web_id", "timestamp", "ordinal"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Folded per-tag aggregates are compacted every this many pages, so state stays one row per tag (not per page).
COMPACT_EVERY = 32

_PER_TAG = {
    "rows": pl.Int64,
    "good": pl.Int64,
    "system": pl.Int64,
    "questionable": pl.Int64,
    "substituted": pl.Int64,
    "out_of_span": pl.Int64,
    "numeric_good": pl.Int64,
    "vmin": pl.Float64,
    "vmax": pl.Float64,
}


def good_expr() -> pl.Expr:
    """A value PI counts as good: Good flag set and not a system state (what summary Count counts)."""
    return pl.col("good") & ~pl.col("is_system")


@dataclass
class Finding:
    """One quality check's outcome over the window: passed, the offending count, a sample, and figures."""

    passed: bool
    offending: int
    sample: list[str]
    figures: dict[str, object] = field(default_factory=dict)


class DuplicateKeyError(ValueError):
    """A page repeats (or goes back before) keys already delivered for a tag; raised before the page is written."""

    def __init__(self, offending: int, web_ids: list[str], example: dict[str, object]) -> None:
        self.offending = offending
        self.web_ids = web_ids
        self.example = example
        super().__init__(
            f"pi_timeseries landing stopped before the Delta commit: {offending} row(s) of {len(web_ids)} tag(s) "
            f"repeat or precede a (timestamp, ordinal) already landed for the same tag, e.g. web_id="
            f"{example['web_id']} timestamp={example['timestamp']} ordinal={example['ordinal']} (tag's previous "
            f"key: {example['previous']}). PI Web API or the client delivered a stream twice or out of order; "
            "nothing of this window was written. Rerun the partition; if it repeats, report the client bug."
        )


def _key_expr() -> pl.Expr:
    # (timestamp µs, ordinal) as one sortable Int128: ordinal is Int32, so 32 bits below the timestamp hold it.
    return pl.col("timestamp").dt.epoch("us").cast(pl.Int128) * (1 << 32) + pl.col("ordinal").cast(pl.Int128)


@dataclass
class KeyOrder:
    """Per tag, the greatest (timestamp, ordinal) landed so far. The client yields every stream in archive order
    (frames per stream group and time window, in time order), so a unique window has strictly increasing keys per
    tag; any key not above its tag's running maximum is a duplicate (or a reordering, which we refuse as well).
    Memory: one Int128 per tag, however long the window."""

    _last: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"web_id": pl.Utf8, "_prev": pl.Int128})
    )
    rows: int = 0

    def check(self, page: pl.DataFrame) -> None:
        """Raise DuplicateKeyError if any row of `page` is not after every earlier key of its tag; else remember
        the page's greatest key per tag."""
        if page.height == 0:
            return
        keyed = (
            page.select(*KEY, _key_expr().alias("_k"))
            .join(self._last, on="web_id", how="left", maintain_order="left")
            .with_columns(
                pl.max_horizontal(pl.col("_k").cum_max().shift(1).over("web_id"), pl.col("_prev")).alias(
                    "_max"
                )
            )
        )
        bad = keyed.filter(pl.col("_k") <= pl.col("_max"))
        if bad.height:
            first = bad.row(0, named=True)
            prev = int(first["_max"])
            prev_ts = EPOCH + timedelta(microseconds=prev >> 32)
            previous = f"{prev_ts.isoformat()} ordinal {prev & 0xFFFFFFFF}"
            raise DuplicateKeyError(
                bad.height,
                bad["web_id"].unique(maintain_order=True).to_list(),
                {
                    "web_id": first["web_id"],
                    "timestamp": first["timestamp"],
                    "ordinal": first["ordinal"],
                    "previous": previous,
                },
            )
        self.rows += page.height
        page_max = keyed.group_by("web_id").agg(pl.col("_k").max().alias("_prev"))
        self._last = pl.concat([self._last, page_max]).group_by("web_id").agg(pl.col("_prev").max())

    @property
    def tags(self) -> int:
        return self._last.height


@dataclass
class WindowProfile:
    """Add landed pages with `add`; `findings` evaluates every quality rule against `thresholds`.

    `points` holds the current catalogue rows of the requested tags (POINT_COLUMNS); values are checked against
    each point's span and zero, and a requested tag without rows is a "no data" tag.
    """

    points: pl.DataFrame
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    keys: KeyOrder = field(default_factory=KeyOrder)
    _parts: list[pl.DataFrame] = field(default_factory=list)
    _states: list[pl.DataFrame] = field(default_factory=list)

    def add(self, page: pl.DataFrame) -> None:
        """Profile one page. Raises DuplicateKeyError (and profiles nothing of the page) when the page repeats a
        key: callers add a page before writing it, so a duplicate never reaches the lake."""
        if page.height == 0:
            return
        self.keys.check(page)
        tol = self.thresholds.span_tolerance
        bounds = self.points.select("web_id", "point_type", "span", "zero")
        numeric_good = (
            good_expr() & pl.col("point_type").is_in(NUMERIC_POINT_TYPES) & pl.col("value").is_not_null()
        )
        lo = pl.col("zero") - tol * pl.col("span")
        hi = pl.col("zero") + (1 + tol) * pl.col("span")
        outside = (
            numeric_good & pl.col("span").is_not_null() & ((pl.col("value") < lo) | (pl.col("value") > hi))
        )
        agg = (
            page.join(bounds, on="web_id", how="left")
            .group_by("web_id")
            .agg(
                pl.len().cast(pl.Int64).alias("rows"),
                good_expr().sum().cast(pl.Int64).alias("good"),
                pl.col("is_system").sum().cast(pl.Int64).alias("system"),
                pl.col("questionable").sum().cast(pl.Int64).alias("questionable"),
                pl.col("substituted").sum().cast(pl.Int64).alias("substituted"),
                outside.sum().cast(pl.Int64).alias("out_of_span"),
                numeric_good.sum().cast(pl.Int64).alias("numeric_good"),
                pl.col("value").filter(numeric_good).min().alias("vmin"),
                pl.col("value").filter(numeric_good).max().alias("vmax"),
            )
        )
        self._parts.append(agg.cast(_PER_TAG))  # type: ignore[arg-type]
        self._states.append(
            page.filter(pl.col("is_system"))
            .group_by(pl.col("value_text").fill_null("(unnamed)").alias("state"))
            .agg(pl.len().cast(pl.Int64).alias("count"))
        )
        if len(self._parts) >= COMPACT_EVERY:
            self._parts = [self._fold_tags()]
            self._states = [self._fold_states()]

    def _fold_tags(self) -> pl.DataFrame:
        empty = pl.DataFrame(schema={"web_id": pl.Utf8, **_PER_TAG})
        landed = pl.concat(self._parts) if self._parts else empty
        return landed.group_by("web_id").agg(
            *(pl.col(c).sum() for c in _PER_TAG if c not in ("vmin", "vmax")),
            pl.col("vmin").min(),
            pl.col("vmax").max(),
        )

    def _fold_states(self) -> pl.DataFrame:
        if not self._states:
            return pl.DataFrame(schema={"state": pl.Utf8, "count": pl.Int64})
        return pl.concat(self._states).group_by("state").agg(pl.col("count").sum())

    def per_tag(self) -> pl.DataFrame:
        """One row per requested tag (and any unexpected web id that landed): counts, shares, min/max."""
        landed = self._fold_tags()
        tags = self.points.select("web_id", "tag", "point_type")
        return (
            tags.join(landed, on="web_id", how="full", coalesce=True)
            .with_columns(pl.col(c).fill_null(0) for c in _PER_TAG if c not in ("vmin", "vmax"))
            .with_columns(pl.col("tag").fill_null(pl.col("web_id")))
            .sort("tag", "web_id")
        )

    def system_states(self) -> dict[str, int]:
        states = self._fold_states().sort("state")
        return {str(k): int(v) for k, v in states.iter_rows()}

    def good_counts(self) -> pl.DataFrame:
        """web_id, good: what PI's summary Count should report per tag for the window."""
        return self.per_tag().select("web_id", pl.col("good").alias("lake_count"))

    def findings(self) -> dict[str, Finding]:
        t = self.thresholds
        tags = self.per_tag()
        with_rows = tags.filter(pl.col("rows") > 0)
        share = lambda c: pl.col(c) / pl.col("rows")  # noqa: E731

        def offending(frame: pl.DataFrame, cond: pl.Expr) -> tuple[int, list[str]]:
            bad = frame.filter(cond)
            return bad.height, bad["tag"].head(t.sample_size).to_list()

        out: dict[str, Finding] = {}
        rows = int(tags["rows"].sum())
        n, sample = offending(with_rows, share("good") < t.min_good_share)
        out["good_share"] = Finding(
            n == 0,
            n,
            sample,
            {
                "min_good_share": t.min_good_share,
                "window_good_share": round(float(tags["good"].sum()) / rows, 6) if rows else None,
                "worst_tag_good_share": round(float(with_rows.select(share("good").min()).item()), 6)
                if with_rows.height
                else None,
            },
        )
        n, sample = offending(with_rows, share("system") > t.max_system_share)
        out["system_states"] = Finding(
            n == 0, n, sample, {"max_system_share": t.max_system_share, "by_state": self.system_states()}
        )
        n, sample = offending(
            with_rows,
            (share("substituted") > t.max_substituted_share)
            | (share("questionable") > t.max_questionable_share),
        )
        out["substituted_questionable"] = Finding(
            n == 0,
            n,
            sample,
            {
                "substituted": int(tags["substituted"].sum()),
                "questionable": int(tags["questionable"].sum()),
                "max_substituted_share": t.max_substituted_share,
                "max_questionable_share": t.max_questionable_share,
            },
        )
        numeric = with_rows.filter(pl.col("numeric_good") > 0)
        n, sample = offending(
            numeric, pl.col("out_of_span") / pl.col("numeric_good") > t.max_out_of_span_share
        )
        out["values_within_span"] = Finding(
            n == 0,
            n,
            sample,
            {
                "out_of_span_values": int(tags["out_of_span"].sum()),
                "max_out_of_span_share": t.max_out_of_span_share,
            },
        )
        n, sample = offending(
            numeric, (pl.col("numeric_good") >= t.flatline_min_values) & (pl.col("vmin") == pl.col("vmax"))
        )
        out["flat_lined_tags"] = Finding(n == 0, n, sample, {"flatline_min_values": t.flatline_min_values})
        no_data = tags.filter(pl.col("rows") == 0)
        requested = self.points.height
        no_data_share = no_data.height / requested if requested else 0.0
        out["tags_with_data"] = Finding(
            no_data_share <= t.max_no_data_share,
            no_data.height,
            no_data["tag"].head(t.sample_size).to_list(),
            {
                "tags_requested": requested,
                "tags_with_data": requested - no_data.height,
                "no_data_share": round(no_data_share, 6),
                "max_no_data_share": t.max_no_data_share,
            },
        )
        # A duplicate raised DuplicateKeyError in `add` (the run fails before its commit); what got here is unique.
        out["unique_keys"] = Finding(True, 0, [], {"rows": rows, "keys_checked": self.keys.rows})
        return out
