"""Pure quality computations on hand-made frames: window findings with exact figures, the per-tag key-order guard,
the data-age histogram's error bound, audit comparisons that tell counts, totals and checksums apart, batched repair
diffs and lateness, and the environment contract of the thresholds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster.lib.quality import (
    DiffTally,
    DuplicateKeyError,
    HourStatsAccumulator,
    KeyOrder,
    LateDataSettings,
    LogHistogram,
    QualityConfigError,
    QualityThresholds,
    WindowProfile,
    cell_batches,
    changed_cells,
    checksum_mismatches,
    count_mismatches,
    hour_stats,
    merge_hour_stats,
    row_diff,
    summary_per_hour,
)

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)


def values(web_id: str, vals: list[float | None], **flags: list[Any]) -> pl.DataFrame:
    n = len(vals)
    return pl.DataFrame(
        {
            "web_id": [web_id] * n,
            "timestamp": [T0 + timedelta(minutes=i) for i in range(n)],
            "ordinal": [0] * n,
            "value": vals,
            "value_text": flags.pop("text", [None] * n),
            "digital_code": [None] * n,
            "is_system": flags.get("is_system", [False] * n),
            "good": flags.get("good", [not s for s in flags.get("is_system", [False] * n)]),
            "questionable": flags.get("questionable", [False] * n),
            "substituted": flags.get("substituted", [False] * n),
            "annotated": [False] * n,
            "units": ["degC"] * n,
        },
        schema=VALUES_SCHEMA,
    )


POINTS = pl.DataFrame(
    {
        "web_id": ["A", "B", "C", "D"],
        "tag": ["tag-a", "tag-b", "tag-c", "tag-d"],
        "point_type": ["Float32", "Float64", "Float32", "String"],
        "span": [100.0, 100.0, 100.0, None],
        "zero": [0.0, 0.0, 0.0, None],
    }
)


def test_window_profile_findings_are_exact() -> None:
    profile = WindowProfile(POINTS, QualityThresholds(flatline_min_values=5, max_no_data_share=0.2))
    # A: 10 values, 2 system states (Shutdown, I/O Timeout), one above span, one substituted.
    a = values(
        "A",
        [1.0, 2.0, None, 150.0, 5.0, None, 7.0, 8.0, 9.0, 10.0],
        is_system=[False, False, True, False, False, True, False, False, False, False],
        substituted=[False] * 9 + [True],
        text=[None, None, "Shutdown", None, None, "I/O Timeout", *[None] * 4],
    )
    # B: flat-lined at 42 over 6 values, delivered in two pages.
    b = values("B", [42.0] * 6)
    profile.add(a)
    profile.add(b.head(3))
    profile.add(b.tail(3))
    f = profile.findings()
    tags = profile.per_tag()
    assert tags.filter(pl.col("web_id") == "A").select("rows", "good", "system", "out_of_span").row(0) == (
        10,
        8,
        2,
        1,
    )
    assert f["unique_keys"].passed is True and f["unique_keys"].figures == {"rows": 16, "keys_checked": 16}
    assert f["good_share"].passed is False and f["good_share"].sample == ["tag-a"]  # 8/10 < 0.9
    assert f["system_states"].passed is False and f["system_states"].figures["by_state"] == {
        "I/O Timeout": 1,
        "Shutdown": 1,
    }
    assert (
        f["values_within_span"].offending == 1 and f["values_within_span"].figures["out_of_span_values"] == 1
    )
    assert f["substituted_questionable"].passed is True  # 1/10 is not above 0.1
    assert f["flat_lined_tags"].sample == ["tag-b"]
    # C and D (no rows): 2 of 4 tags, above the 0.2 limit.
    assert f["tags_with_data"].passed is False and f["tags_with_data"].sample == ["tag-c", "tag-d"]
    assert profile.good_counts().sort("web_id").rows() == [("A", 8), ("B", 6), ("C", 0), ("D", 0)]


def test_profile_state_stays_one_row_per_tag_over_many_pages() -> None:
    profile = WindowProfile(POINTS)
    page = values("A", [1.0, 2.0])
    for i in range(200):  # 200 pages of one tag, a later minute each time
        profile.add(page.with_columns(pl.col("timestamp") + timedelta(minutes=2 * i)))
    assert len(profile._parts) < 40 and sum(part.height for part in profile._parts) < 40
    assert profile.per_tag().filter(pl.col("web_id") == "A")["rows"].item() == 400
    assert profile.keys.tags == 1 and profile.keys.rows == 400


def test_key_order_refuses_repeated_and_reordered_keys_across_pages() -> None:
    a, b = values("A", [1.0] * 6), values("B", [2.0] * 4)
    guard = KeyOrder()
    # Interleaved tags and a duplicate timestamp with ordinals 0, 1 are fine: keys increase per tag.
    dup_ts = a.head(1).with_columns(pl.lit(1, dtype=pl.Int32).alias("ordinal"))
    guard.check(pl.concat([a.head(1), dup_ts, b.head(2), a.slice(1, 2)]))
    guard.check(pl.concat([b.tail(2), a.tail(3)]))
    assert (guard.rows, guard.tags) == (11, 2)
    # A page that repeats three already-landed rows of A (and carries a new one of B) is refused, whole.
    with pytest.raises(DuplicateKeyError) as caught:
        guard.check(
            pl.concat(
                [a.slice(3, 3), values("B", [3.0]).with_columns(pl.col("timestamp") + timedelta(hours=1))]
            )
        )
    err = caught.value
    assert err.offending == 3 and err.web_ids == ["A"]
    assert err.example["timestamp"] == T0 + timedelta(minutes=3)
    assert err.example["previous"] == f"{(T0 + timedelta(minutes=5)).isoformat()} ordinal 0"
    assert "nothing of this window was written" in str(err)
    assert guard.rows == 11  # the refused page was not remembered
    # Within one page: a key going back (reordering) or repeating is caught too, all copies after the first.
    with pytest.raises(DuplicateKeyError) as caught:
        KeyOrder().check(pl.concat([a, a.head(2)]))
    assert caught.value.offending == 2
    with pytest.raises(DuplicateKeyError):
        KeyOrder().check(a.reverse())


def test_log_histogram_quantiles_within_half_a_percent() -> None:
    rng = np.random.default_rng(7)
    ages = np.concatenate([rng.exponential(1800.0, 200_000), rng.uniform(3600, 7 * 86400, 5_000)])
    hist = LogHistogram()
    for chunk in np.array_split(ages, 37):
        hist.add(chunk)
    exact = np.sort(ages)
    for q in (0.0, 0.01, 0.5, 0.95, 0.999, 1.0):
        want = exact[round(q * (len(exact) - 1))]
        got = hist.quantile(q)
        assert got is not None and abs(got - want) <= 0.005 * want + 1e-3, (q, got, want)
    assert hist.count == len(ages) and hist.max == exact[-1] and hist.min == exact[0]
    # Constant memory: the counters do not grow with the number of values.
    size = hist.counts.nbytes
    hist.add(rng.exponential(10.0, 1_000_000))
    assert hist.counts.nbytes == size < 32_000
    # Sub-millisecond and negative ages (clock skew) share the lowest bin, reported as 0; min and max stay exact.
    skewed = LogHistogram()
    skewed.add(np.array([-2.0, -1.0, 0.0005, 10.0]))
    assert skewed.quantile(0.0) == -2.0 and skewed.quantile(0.5) == 0.0 and skewed.quantile(1.0) == 10.0
    assert skewed.summary() == {"p50": 0.0, "p95": 10.0, "max": 10.0}
    assert LogHistogram().summary() == {} and LogHistogram().quantile(0.5) is None
    merged = LogHistogram()
    merged.merge(hist)
    merged.merge(skewed)
    assert merged.count == hist.count + 4 and merged.min == -2.0
    assert sys.getsizeof(merged.counts) < 40_000


def test_repair_diff_only_reads_changed_cells_in_bounded_batches() -> None:
    before = pl.concat([values(w, [float(i) for i in range(10)]) for w in "ABCDE"])
    # After: A has a replaced value, B lost a row, C gained a late row; D and E are identical.
    after = before.with_columns(
        pl.when((pl.col("web_id") == "A") & (pl.col("value") == 4.0))
        .then(40.0)
        .otherwise(pl.col("value"))
        .alias("value")
    ).filter(~((pl.col("web_id") == "B") & (pl.col("value") == 9.0)))
    late = values("C", [5.5]).with_columns(pl.col("timestamp") + timedelta(minutes=30, seconds=7))
    after = pl.concat([after, late])
    acc = HourStatsAccumulator()
    for chunk in after.iter_slices(7):
        acc.add(chunk)
    cells, unchanged = changed_cells(hour_stats(before), acc.result())
    assert sorted(cells["web_id"].to_list()) == ["A", "B", "C"] and unchanged == 20
    assert dict(cells.select("web_id", "rows").iter_rows()) == {"A": 20, "B": 19, "C": 21}
    batches = cell_batches(cells, max_rows=40)
    assert [sorted(b["web_id"].to_list()) for b in batches] == [["A", "B"], ["C"]]
    ingested = T0 + timedelta(hours=2)
    tally = DiffTally(ingested, unchanged=unchanged)
    for batch in batches:
        ids = batch["web_id"].implode()
        tally.add(before.filter(pl.col("web_id").is_in(ids)), after.filter(pl.col("web_id").is_in(ids)))
    diff = tally.result()
    assert (diff.inserted, diff.deleted, diff.changed, diff.unchanged) == (1, 1, 1, 20 + 9 + 9 + 10)
    assert diff.tags_changed == ["A", "B", "C"]
    assert diff.lateness_max_s == (ingested - (T0 + timedelta(minutes=30, seconds=7))).total_seconds()
    assert diff.lateness_p50_s == pytest.approx(diff.lateness_max_s, rel=0.005)
    # One tag bigger than the budget is split by hour.
    two_hours = pl.concat(
        [
            values("Z", [1.0] * 5),
            values("Z", [1.0] * 5).with_columns(pl.col("timestamp") + timedelta(hours=1)),
        ]
    )
    big = changed_cells(hour_stats(two_hours.head(0)), hour_stats(two_hours))[0]
    assert [b.height for b in cell_batches(big, max_rows=6)] == [1, 1]


def test_audit_tells_counts_totals_and_checksums_apart() -> None:
    lake = values("A", [1.0, 2.0, 3.0]).vstack(values("B", [5.0, 6.0]))
    pi_insert = lake.vstack(values("B", [7.0]).with_columns(pl.col("timestamp") + timedelta(minutes=30)))
    pi_replace = lake.with_columns(
        pl.when(pl.col("value") == 2.0).then(20.0).otherwise(pl.col("value")).alias("value")
    )
    pi_flag = lake.with_columns((pl.col("value") == 3.0).alias("questionable"))

    def summaries(frame: pl.DataFrame) -> pl.DataFrame:
        stats = hour_stats(frame)
        return stats.select(
            "web_id", "hour", pl.col("good_count").alias("pi_count"), pl.col("good_total").alias("pi_total")
        )

    lake_stats = hour_stats(lake)
    assert count_mismatches(lake_stats, summaries(lake)).height == 0
    assert count_mismatches(lake_stats, summaries(pi_insert))[["web_id", "reason"]].rows() == [("B", "count")]
    assert count_mismatches(lake_stats, summaries(pi_replace))[["web_id", "reason"]].rows() == [
        ("A", "total")
    ]
    assert count_mismatches(lake_stats, summaries(pi_flag)).height == 0  # invisible to counts and totals...
    assert checksum_mismatches(lake_stats, hour_stats(pi_flag))[["web_id", "reason"]].rows() == [
        ("A", "checksum")
    ]
    # Pages combine to the same checksum as one read.
    assert merge_hour_stats([hour_stats(lake.head(2)), hour_stats(lake.tail(3))]).equals(lake_stats)
    # A tag gone from PI entirely is a mismatch too.
    assert checksum_mismatches(lake_stats, hour_stats(lake.filter(pl.col("web_id") == "A")))[
        "web_id"
    ].to_list() == ["B"]


def test_summary_per_hour_assigns_hours_by_position() -> None:
    s = pl.DataFrame(
        {
            "web_id": ["A"] * 4,
            "summary_type": ["Count", "Count", "Total", "Total"],
            "timestamp": [T0, T0, T0, T0],  # whatever PI stamps, position decides
            "value": [3.0, 4.0, 6.0, None],
            "value_text": [None, None, None, "Calc Failed"],
            "good": [True, True, True, False],
            "units": ["count"] * 2 + ["degC"] * 2,
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    out = summary_per_hour(s, T0).sort("hour")
    assert out.rows() == [("A", T0, 3, 6.0), ("A", T0 + timedelta(hours=1), 4, None)]


def test_row_diff_counts_and_lateness() -> None:
    before = values("A", [1.0, 2.0, 3.0, 4.0])
    after = before.filter(pl.col("value") != 4.0).with_columns(
        pl.when(pl.col("value") == 2.0).then(2.5).otherwise(pl.col("value")).alias("value")
    )
    late = values("B", [9.0])
    after = after.vstack(late)
    ingested = T0 + timedelta(hours=5)
    diff = row_diff(before, after, ingested)
    assert (diff.inserted, diff.deleted, diff.changed, diff.unchanged) == (1, 1, 1, 2)
    assert diff.tags_changed == ["A", "B"] and diff.rows_changed == 3
    assert diff.lateness_max_s == diff.lateness_p50_s == 5 * 3600.0


def test_thresholds_and_settings_from_env() -> None:
    t = QualityThresholds.from_env(
        {"OSIPI_QUALITY_MIN_GOOD_SHARE": "0.75", "OSIPI_QUALITY_FLATLINE_MIN_VALUES": "30"}
    )
    assert t.min_good_share == 0.75 and t.flatline_min_values == 30 and t.max_system_share == 0.1
    with pytest.raises(QualityConfigError, match=r"OSIPI_QUALITY_MIN_GOOD_SHARE=.1\.5. is out of range"):
        QualityThresholds.from_env({"OSIPI_QUALITY_MIN_GOOD_SHARE": "1.5"})
    with pytest.raises(QualityConfigError, match="OSIPI_QUALITY_FLATLINE_MIN_VALUES='ten' is not an integer"):
        QualityThresholds.from_env({"OSIPI_QUALITY_FLATLINE_MIN_VALUES": "ten"})
    s = LateDataSettings.from_env(
        {"OSIPI_LATE_DATA_LOOKBACK_HOURS": "48", "OSIPI_LATE_DATA_CHECKSUM_HOURS": "12"}
    )
    assert (s.lookback_hours, s.checksum_hours, s.watch_event_frames) == (48, 12, True)
    assert LateDataSettings.from_env({"OSIPI_LATE_DATA_EVENT_FRAMES": "false"}).watch_event_frames is False
    with pytest.raises(QualityConfigError, match="OSIPI_LATE_DATA_EVENT_FRAMES='maybe' is not a boolean"):
        LateDataSettings.from_env({"OSIPI_LATE_DATA_EVENT_FRAMES": "maybe"})
    # The age limit is gone (frames open longer were never re-checked): a leftover setting says so.
    with pytest.raises(QualityConfigError, match="OSIPI_LATE_DATA_EVENT_FRAME_DAYS is no longer used"):
        LateDataSettings.from_env({"OSIPI_LATE_DATA_EVENT_FRAME_DAYS": "7"})
    with pytest.raises(
        QualityConfigError, match="CHECKSUM_HOURS=12 exceeds OSIPI_LATE_DATA_LOOKBACK_HOURS=6"
    ):
        LateDataSettings.from_env(
            {"OSIPI_LATE_DATA_LOOKBACK_HOURS": "6", "OSIPI_LATE_DATA_CHECKSUM_HOURS": "12"}
        )
