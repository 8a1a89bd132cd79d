"""Data quality profile of one landed pi_timeseries window, accumulated page by page while the window streams in.

Bounded memory: one aggregate row per tag, one per system-state name, and an 8-byte key hash per row for duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from osipi_dagster.lib.quality.config import QualityThresholds

NUMERIC_POINT_TYPES = ("Float16", "Float32", "Float64", "Int16", "Int32")
# Columns of the point catalogue the profile needs (pi_points current rows).
POINT_COLUMNS = ["web_id", "tag", "point_type", "span", "zero"]
KEY = ["web_id", "timestamp", "ordinal"]

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


@dataclass
class WindowProfile:
    """Add landed pages with `add`; `findings` evaluates every quality rule against `thresholds`.

    `points` holds the current catalogue rows of the requested tags (POINT_COLUMNS); values are checked against
    each point's span and zero, and a requested tag without rows is a "no data" tag.
    """

    points: pl.DataFrame
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    _parts: list[pl.DataFrame] = field(default_factory=list)
    _states: list[pl.DataFrame] = field(default_factory=list)
    _key_hashes: list[pl.Series] = field(default_factory=list)

    def add(self, page: pl.DataFrame) -> None:
        if page.height == 0:
            return
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
        self._key_hashes.append(page.select(pl.struct(KEY).hash(0x05157)).to_series())

    def per_tag(self) -> pl.DataFrame:
        """One row per requested tag (and any unexpected web id that landed): counts, shares, min/max."""
        empty = pl.DataFrame(schema={"web_id": pl.Utf8, **_PER_TAG})
        landed = pl.concat(self._parts) if self._parts else empty
        landed = landed.group_by("web_id").agg(
            *(pl.col(c).sum() for c in _PER_TAG if c not in ("vmin", "vmax")),
            pl.col("vmin").min(),
            pl.col("vmax").max(),
        )
        tags = self.points.select("web_id", "tag", "point_type")
        return (
            tags.join(landed, on="web_id", how="full", coalesce=True)
            .with_columns(pl.col(c).fill_null(0) for c in _PER_TAG if c not in ("vmin", "vmax"))
            .with_columns(pl.col("tag").fill_null(pl.col("web_id")))
            .sort("tag", "web_id")
        )

    def system_states(self) -> dict[str, int]:
        if not self._states:
            return {}
        states = pl.concat(self._states).group_by("state").agg(pl.col("count").sum()).sort("state")
        return {str(k): int(v) for k, v in states.iter_rows()}

    def duplicate_keys(self) -> int:
        """Rows whose (web_id, timestamp, ordinal) occurs more than once in the window (all copies counted)."""
        if not self._key_hashes:
            return 0
        return int(pl.concat(self._key_hashes).is_duplicated().sum())

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
        dups = self.duplicate_keys()
        out["unique_keys"] = Finding(dups == 0, dups, [], {"rows": rows})
        return out
