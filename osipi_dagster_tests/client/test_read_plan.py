"""The landing's read plan for a run's range (lib/landing/recorded.hourly_pages) against a real emulator: one probe
hour, then the rest in the fewest calls the learned densities allow, every value of the archive exactly once.

Expected values come from mock_pi's own archive (osipi_dagster_tests/client/expected.py), never from the client.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl

from osipi_dagster.lib.landing.progress import Progress
from osipi_dagster.lib.landing.recorded import READ_VALUES_PER_CALL, hourly_pages
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator

DAY = (datetime(2024, 4, 30, 11, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))
LIMIT = 150_000  # the emulator's MaxReturnedItemsPerCall


def test_day_range_reads_probe_hour_then_fewest_calls(emulator: Emulator) -> None:
    expected = Expected()
    points = [expected.point(i) for i in range(60)]  # index 5: the ~180,000 values/day vibration tag
    ids = [p.web_id for p in points]
    want = expected.recorded(points, *DAY, include_end=False)
    assert len(want) > LIMIT  # more than one call's worth, so the range cannot be a single call
    progress = Progress(lambda _: None, "plan")
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        frames = list(hourly_pages(pi, ids, *DAY, progress))
        calls = pi.stats.http_calls
    got = pl.concat(frames)
    assert_same(got, want)
    # Each tag's values come in time order, pages in read order (what the landing's key-order guard requires).
    assert (
        got.group_by("web_id", maintain_order=True)
        .agg(pl.col("timestamp").is_sorted())
        .get_column("timestamp")
        .all()
    )
    # The probe hour (one stream-set call, one continuation round for the dense tag), then 23 hours in the calls of
    # READ_VALUES_PER_CALL the learned densities need (20 % headroom), plus at most one continuation round each.
    rest = len(want.filter(pl.col("timestamp") >= DAY[0] + timedelta(hours=1)))
    fewest = math.ceil(rest * 1.2 / READ_VALUES_PER_CALL)
    assert calls <= 2 + 2 * fewest < 24, calls  # hour by hour it was 25 calls
    assert progress.pages == len(frames) == progress.total_pages
