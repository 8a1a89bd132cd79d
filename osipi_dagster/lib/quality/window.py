"""Data quality profile of one landed pi_timeseries window, accumulated page by page while the window streams in,
and the per-tag key-order guard that stops duplicate keys before they reach the lake.

Bounded memory whatever the window length: one aggregate row per tag, one per system-state name, one last key per tag.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from osipi_dagster.lib.settings.quality import QualityThresholds

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


@dataclass(frozen=True)
class TagRuns:
    """A page whose rows come tag by tag (each web id in one contiguous run, as the client yields them): the runs'
    web ids, first rows and lengths. Per-tag work on such a page is a reduction over runs, with no hashing."""

    web_ids: list[str]
    starts: np.ndarray
    lengths: np.ndarray

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """One value per run → one per row."""
        return np.repeat(values, self.lengths)


def tag_runs(web_id: pl.Series) -> TagRuns | None:
    """The runs of `web_id` when every web id occupies one contiguous run and none is null; else None (callers
    then take their general, hash-based path)."""
    n = len(web_id)
    if n == 0 or web_id.has_nulls():
        return None
    run_id = web_id.rle_id().to_numpy()
    starts = np.flatnonzero(run_id[1:] != run_id[:-1]) + 1
    starts = np.concatenate((np.zeros(1, dtype=np.int64), starts.astype(np.int64)))
    firsts = web_id.gather(starts).to_list()
    if len(set(firsts)) != len(firsts):
        return None
    return TagRuns(firsts, starts, np.diff(np.append(starts, n)))


def _epoch_us(stamps: pl.Series) -> np.ndarray:
    """Microseconds since the epoch of a Datetime column, as numpy (no copy for the usual Datetime("us"))."""
    dtype = stamps.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "us":
        return stamps.to_physical().to_numpy()
    return stamps.dt.epoch("us").to_numpy()


def _bools(page: pl.DataFrame, name: str) -> np.ndarray | None:
    column = page[name]
    return None if column.has_nulls() else column.to_numpy()


@dataclass
class KeyOrder:
    """Per tag, the greatest (timestamp, ordinal) landed so far. The client yields every stream in archive order
    (frames per stream group and time window, in time order), so a unique window has strictly increasing keys per
    tag; any key not above its tag's running maximum is a duplicate (or a reordering, which we refuse as well).
    Memory: one key per tag, however long the window."""

    # web id → greatest key landed, as the Int128 of _key_expr (a Python int; None when only null keys landed).
    _prev: dict[str | None, int | None] = field(default_factory=dict)
    rows: int = 0

    def check(self, page: pl.DataFrame, runs: TagRuns | None = None) -> None:
        """Raise DuplicateKeyError if any row of `page` is not after every earlier key of its tag; else remember
        the page's greatest key per tag. `runs`: tag_runs(page["web_id"]) when the caller has it already."""
        if page.height == 0:
            return
        if runs is None:
            runs = tag_runs(page["web_id"])
        if runs is None or not self._check_runs(page, runs):
            self._check_exact(page)

    def _check_runs(self, page: pl.DataFrame, runs: TagRuns) -> bool:
        """Fast path for a page that comes tag by tag: keys strictly increasing within each run, and each run's
        first key above the tag's previous one, means no row repeats a key (the running maximum is then the
        previous row). Remembers the page and returns True; returns False (remembering nothing) otherwise, and
        the exact path finds and reports the offending rows."""
        stamps, ordinals = page["timestamp"], page["ordinal"]
        if stamps.has_nulls() or ordinals.has_nulls():
            return False
        ts = _epoch_us(stamps)
        ordinal = ordinals.to_numpy()
        later = (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (ordinal[1:] > ordinal[:-1]))
        later[runs.starts[1:] - 1] = True  # a run's first row is compared with the tag's previous key below
        if not later.all():
            return False
        shift = 1 << 32
        ends = runs.starts + runs.lengths - 1
        first_keys = [
            int(t) * shift + int(o) for t, o in zip(ts[runs.starts], ordinal[runs.starts], strict=True)
        ]
        prev = self._prev
        for web_id, key in zip(runs.web_ids, first_keys, strict=True):
            before = prev.get(web_id)
            if before is not None and key <= before:
                return False
        for web_id, t, o in zip(runs.web_ids, ts[ends], ordinal[ends], strict=True):
            prev[web_id] = int(t) * shift + int(o)
        self.rows += page.height
        return True

    def _check_exact(self, page: pl.DataFrame) -> None:
        """Any page: per-tag running maximum over the page's rows in order (hash-based)."""
        last = pl.DataFrame(
            {"web_id": list(self._prev), "_prev": list(self._prev.values())},
            schema={"web_id": pl.Utf8, "_prev": pl.Int128},
        )
        keyed = (
            page.select(*KEY, _key_expr().alias("_k"))
            .join(last, on="web_id", how="left", maintain_order="left")
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
        for web_id, key in page_max.iter_rows():
            # Nulls kept as they were in the old table of keys: a null web id never joins, a null key is no bound.
            before = self._prev.get(web_id)
            self._prev[web_id] = key if before is None else before if key is None else max(before, key)

    @property
    def tags(self) -> int:
        return len(self._prev)


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

    def add(self, page: pl.DataFrame, runs: TagRuns | None = None) -> None:
        """Profile one page. Raises DuplicateKeyError (and profiles nothing of the page) when the page repeats a
        key: callers add a page before writing it, so a duplicate never reaches the lake. `runs`:
        tag_runs(page["web_id"]) when the caller has it already."""
        if page.height == 0:
            return
        if runs is None:
            runs = tag_runs(page["web_id"])
        self.keys.check(page, runs)
        agg = self._per_tag_runs(page, runs) if runs is not None else None
        if agg is None:
            agg = self._per_tag_exact(page).cast(_PER_TAG)  # type: ignore[arg-type]
        self._parts.append(agg)
        system = page["is_system"]
        if runs is not None and not system.has_nulls():
            # System states are a handful of rows: count their names in Python (same counts as the group-by).
            rows = np.flatnonzero(system.to_numpy())
            if len(rows):
                names = Counter(page["value_text"].gather(rows).to_list())
                self._states.append(
                    pl.DataFrame(
                        {
                            "state": ["(unnamed)" if k is None else k for k in names],
                            "count": list(names.values()),
                        },
                        schema={"state": pl.Utf8, "count": pl.Int64},
                    )
                )
        elif system.any():
            self._states.append(
                page.filter(pl.col("is_system"))
                .group_by(pl.col("value_text").fill_null("(unnamed)").alias("state"))
                .agg(pl.len().cast(pl.Int64).alias("count"))
            )
        if len(self._parts) >= COMPACT_EVERY:
            self._parts = [self._fold_tags()]
            self._states = [self._fold_states()]

    def _per_tag_exact(self, page: pl.DataFrame) -> pl.DataFrame:
        """The page's per-tag aggregates, any page (hash join with the catalogue, group by web id)."""
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
        return (
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

    @cached_property
    def _bounds(self) -> dict[str, tuple[bool, float, float]] | None:
        """web id → (numeric point type, span, zero; NaN for null), or None when the catalogue repeats a web id
        (the hash join would then repeat rows; the exact path keeps that behaviour)."""
        points = self.points
        out: dict[str, tuple[bool, float, float]] | None = None
        if points["web_id"].is_unique().all():
            numeric = points["point_type"].is_in(NUMERIC_POINT_TYPES).fill_null(False).to_list()
            span = points["span"].cast(pl.Float64).fill_null(float("nan")).to_list()
            zero = points["zero"].cast(pl.Float64).fill_null(float("nan")).to_list()
            out = dict(zip(points["web_id"].to_list(), zip(numeric, span, zero, strict=True), strict=True))
        return out

    def _per_tag_runs(self, page: pl.DataFrame, runs: TagRuns) -> pl.DataFrame | None:
        """The same aggregates as _per_tag_exact for a page that comes tag by tag, as numpy reductions over the
        runs; None (exact path) for what numpy would order differently from polars: NaN or -0.0 values, nulls in
        flags, or a catalogue that repeats a web id."""
        bounds = self._bounds
        if bounds is None:
            return None
        good, system = _bools(page, "good"), _bools(page, "is_system")
        quest, subst = _bools(page, "questionable"), _bools(page, "substituted")
        if good is None or system is None or quest is None or subst is None:
            return None
        value = page["value"]
        if value.has_nulls():
            has_value = value.is_not_null().to_numpy()
            v = value.fill_null(0.0).to_numpy()
        else:
            has_value = np.ones(page.height, dtype=bool)
            v = value.to_numpy()
        if np.isnan(v).any() or (np.signbit(v) & (v == 0.0)).any():
            return None
        missing: tuple[bool, float, float] = (False, float("nan"), float("nan"))
        per_run = [bounds.get(w, missing) for w in runs.web_ids]
        numeric = np.fromiter((b[0] for b in per_run), dtype=bool, count=len(per_run))
        span = np.fromiter((b[1] for b in per_run), dtype=np.float64, count=len(per_run))
        zero = np.fromiter((b[2] for b in per_run), dtype=np.float64, count=len(per_run))
        tol = self.thresholds.span_tolerance
        lo = zero - tol * span
        hi = zero + (1 + tol) * span
        good_value = good & ~system
        numeric_good = good_value & runs.per_row(numeric) & has_value
        outside = (
            numeric_good & runs.per_row(~np.isnan(span)) & ((v < runs.per_row(lo)) | (v > runs.per_row(hi)))
        )

        def total(flags: np.ndarray) -> np.ndarray:
            return np.add.reduceat(flags.astype(np.int64), runs.starts)

        n_numeric = total(numeric_good)
        none = n_numeric == 0
        vmin = np.minimum.reduceat(np.where(numeric_good, v, np.inf), runs.starts)
        vmax = np.maximum.reduceat(np.where(numeric_good, v, -np.inf), runs.starts)
        columns: dict[str, Any] = {
            "web_id": pl.Series(runs.web_ids, dtype=pl.Utf8),
            "rows": runs.lengths.astype(np.int64),
            "good": total(good_value),
            "system": total(system),
            "questionable": total(quest),
            "substituted": total(subst),
            "out_of_span": total(outside),
            "numeric_good": n_numeric,
            # Tags without a numeric good value have null min/max, as polars' min of nothing.
            "vmin": np.ma.masked_array(vmin, mask=none) if none.any() else vmin,
            "vmax": np.ma.masked_array(vmax, mask=none) if none.any() else vmax,
        }
        return pl.DataFrame(columns, schema={"web_id": pl.Utf8, **_PER_TAG})

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
