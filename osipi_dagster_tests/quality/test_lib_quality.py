"""Pure quality computations on hand-made frames: window findings with exact figures, audit comparisons that tell
counts, totals and checksums apart, repair diffs and lateness, and the environment contract of the thresholds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster.lib.quality import (
    LateDataSettings,
    QualityConfigError,
    QualityThresholds,
    WindowProfile,
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
    # B: flat-lined at 42 over 6 values, delivered in two pages; one key duplicated across the pages.
    b = values("B", [42.0] * 6)
    profile.add(a)
    profile.add(b.head(3))
    profile.add(b.tail(4))  # row 2 again: a duplicate key
    f = profile.findings()
    tags = profile.per_tag()
    assert tags.filter(pl.col("web_id") == "A").select("rows", "good", "system", "out_of_span").row(0) == (
        10,
        8,
        2,
        1,
    )
    assert f["unique_keys"].passed is False and f["unique_keys"].offending == 2
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
    assert profile.good_counts().sort("web_id").rows() == [("A", 8), ("B", 7), ("C", 0), ("D", 0)]


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
    assert (s.lookback_hours, s.checksum_hours, s.event_frame_days) == (48, 12, 7)
    with pytest.raises(
        QualityConfigError, match="CHECKSUM_HOURS=12 exceeds OSIPI_LATE_DATA_LOOKBACK_HOURS=6"
    ):
        LateDataSettings.from_env(
            {"OSIPI_LATE_DATA_LOOKBACK_HOURS": "6", "OSIPI_LATE_DATA_CHECKSUM_HOURS": "12"}
        )
