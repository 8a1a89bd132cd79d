"""Interpolated, plot, summary/Count, end values and channels against a real emulator, checked against its archive.

Counts and end values are compared with mock_pi's archive; grids with the requested interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import (
    COUNTS_SCHEMA,
    SUMMARY_SCHEMA,
    VALUES_SCHEMA,
    ClientConfig,
    PIWebAPIClient,
)
from osipi_dagster_tests.client.expected import Expected, us
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


def test_recorded_counts_match_the_archive(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(10, 30)]
    start, end = NOW - timedelta(hours=6), NOW - timedelta(hours=1)
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        counts = pi.recorded_counts([p.web_id for p in points], start, end)
        calls = pi.stats.http_calls
    assert counts.schema == COUNTS_SCHEMA
    assert calls == 1

    # PI's summary Count covers [start, end) and counts good values only (system states and bad values are
    # not counted), so an audit compares it with the good rows of a half-open recorded read.
    def good_count(p) -> int:  # type: ignore[no-untyped-def]
        v = expected.archive.recorded(p, us(start), us(end))
        return int(((v.ts_us < us(end)) & v.good & ~v.is_system).sum())

    want = {p.web_id: good_count(p) for p in points}
    assert dict(counts.iter_rows()) == want
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        read = pi.recorded([p.web_id for p in points], start, end)
    good = read.filter(pl.col("good") & ~pl.col("is_system")).group_by("web_id").len()
    assert dict(good.iter_rows()) == {w: n for w, n in want.items() if n}


def test_end_values_are_the_last_archive_values(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(0, 12)]
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        end = pi.end_values([p.web_id for p in points])
    assert end.schema == VALUES_SCHEMA
    want = {p.web_id: int(expected.archive.snapshot(p).ts_us[-1]) for p in points}
    got = {w: int(t.timestamp() * 1_000_000) for w, t in end.select("web_id", "timestamp").iter_rows()}
    assert got == want


def test_interpolated_grid_and_plot_and_summary(emulator: Emulator, expected: Expected) -> None:
    numeric = [p for p in (expected.point(i) for i in range(10, 60)) if p.is_numeric][:8]
    start, end = NOW - timedelta(hours=4), NOW
    with PIWebAPIClient(ClientConfig(emulator.api, max_items_per_call=100)) as pi:
        interp = pi.interpolated([p.web_id for p in numeric], start, end, "5m")
        plot = pi.plot([p.web_id for p in numeric], start, end, intervals=10)
        summary = pi.summary([p.web_id for p in numeric], start, end, ("Average", "Maximum"), "1h")
    # 49 grid points per stream; with 100 items per call the client split streams and time to stay under it.
    assert interp.group_by("web_id").len()["len"].to_list() == [49] * len(numeric)
    grid = interp.filter(pl.col("web_id") == numeric[0].web_id)["timestamp"].to_list()
    assert grid == [start + timedelta(minutes=5 * k) for k in range(49)]
    assert plot.schema == VALUES_SCHEMA and len(plot) > 0
    assert plot["timestamp"].min() >= start and plot["timestamp"].max() <= end
    assert summary.schema == SUMMARY_SCHEMA
    assert sorted(set(summary["summary_type"].to_list())) == ["Average", "Maximum"]
    assert summary.group_by("web_id").len()["len"].to_list() == [8] * len(numeric)


def test_channel_initial_values_equal_end_values(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(0, 6)]
    ids = [p.web_id for p in points]
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        end = pi.end_values(ids)
        stream = pi.channel(ids, include_initial_values=True, silence_timeout_s=10.0)
        first = next(iter(stream))
    assert first.schema == VALUES_SCHEMA
    key = ["web_id", "timestamp"]
    assert first.select(key).sort(key).equals(end.select(key).sort(key))
