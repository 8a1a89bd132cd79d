"""Recorded-value completeness against a real emulator: maxCount boundaries, duplicate timestamps, the 150,000 limit.

Expected values come from mock_pi's own archive (osipi_dagster_tests/client/expected.py), never from the client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from osipi_dagster.lib.piwebapi import VALUES_SCHEMA, ClientConfig, PIWebAPIClient
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
HIGH_DENSITY = 5  # VIB-HF00005.PV: ~180,000 values a day


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


def _points_with(expected: Expected, predicate, count: int) -> list:  # type: ignore[no-untyped-def]
    found = [p for p in (expected.point(i) for i in range(500)) if predicate(p)]
    assert len(found) >= count, "the emulator catalog lacks the points this test needs"
    return found[:count]


def test_many_tags_are_complete_and_exact(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(10, 70)]
    start, end = NOW - timedelta(hours=6), NOW
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded([p.web_id for p in points], start, end)
        first_calls = pi.stats.http_calls
        # Densities observed by the first read let the next window go in exactly one call.
        again = pi.recorded([p.web_id for p in points], start, end)
        second_calls = pi.stats.http_calls - first_calls
    want = expected.recorded(points, start, end, include_end=False)
    assert got.schema == VALUES_SCHEMA
    assert len(want) > 1000
    assert_same(got, want)
    assert again.equals(got)
    assert first_calls <= 3
    assert second_calls == 1
    assert pi.stats.values == 2 * len(want)


def test_maxcount_boundaries_with_duplicate_timestamps(emulator: Emulator, expected: Expected) -> None:
    """A tiny per-call budget forces hundreds of continuations; duplicates at a cut must be neither lost nor doubled."""
    points = _points_with(expected, lambda p: p.duplicates and p.is_numeric and p.spacing_us <= 60_000_000, 3)
    start, end = NOW - timedelta(hours=3), NOW
    want = expected.recorded(points, start, end, include_end=True)
    dup_rows = want.filter(want["ordinal"] > 0)
    assert len(dup_rows) > 0, "no duplicate timestamps in range: the test would prove nothing"
    with PIWebAPIClient(ClientConfig(emulator.api, max_items_per_call=7)) as pi:
        got = pi.recorded([p.web_id for p in points], start, end, include_end=True)
        assert pi.stats.http_calls > 20
    assert_same(got, want)


def test_include_end_and_half_open_windows_tile_exactly(emulator: Emulator, expected: Expected) -> None:
    point = expected.point(1)  # CDT158, every 30 s
    start, mid, end = NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        first = pi.recorded([point.web_id], start, mid)
        second = pi.recorded([point.web_id], mid, end)
        whole = pi.recorded([point.web_id], start, end)
        closed = pi.recorded([point.web_id], start, end, include_end=True)
    assert len(first) + len(second) == len(whole)
    assert first["timestamp"].max() < mid <= second["timestamp"].min()
    assert_same(closed, expected.recorded([point], start, end, include_end=True))


def test_high_density_day_over_the_150000_limit(emulator: Emulator, expected: Expected) -> None:
    point = expected.point(HIGH_DENSITY)
    start, end = NOW - timedelta(days=1), NOW
    want = expected.recorded([point], start, end, include_end=False)
    assert len(want) > 150_000
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded([point.web_id], start, end)
        assert pi.stats.http_calls >= 2
        # The observed density now plans the next window: the same read needs exactly 2 calls, not more.
        before = pi.stats.http_calls
        again = pi.recorded([point.web_id], start, end)
        assert pi.stats.http_calls - before == 2
    assert_same(got, want)
    assert again.equals(got)


def test_server_limit_below_client_budget_splits_and_learns(emulator_factory, expected: Expected) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(
        "--seed",
        "42",
        "--tags",
        "500",
        "--clock",
        "frozen:2024-05-01T12:00:00Z",
        "--max-returned-items",
        "20000",
    )
    point = expected.point(HIGH_DENSITY)
    others = [expected.point(i) for i in range(20, 40)]
    start, end = NOW - timedelta(hours=4), NOW
    with PIWebAPIClient(ClientConfig(emu.api)) as pi:
        got = pi.recorded([point.web_id, *(p.web_id for p in others)], start, end)
        assert pi.max_items_per_call == 20_000
    assert_same(got, expected.recorded([point, *others], start, end, include_end=False))


def test_every_point_type_decodes(emulator: Emulator, expected: Expected) -> None:
    by_type: dict[str, object] = {}
    for i in range(500):
        p = expected.point(i)
        by_type.setdefault(p.point_type, p)
    assert {"Float32", "Float64", "Int16", "Int32", "Digital", "String", "Timestamp"} <= set(by_type)
    points = list(by_type.values())
    start, end = NOW - timedelta(days=3), NOW
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded([p.web_id for p in points], start, end)  # type: ignore[attr-defined]
    want = expected.recorded(points, start, end, include_end=False)  # type: ignore[arg-type]
    assert_same(got, want)
    digital = got.filter(got["digital_code"].is_not_null() & ~got["is_system"])
    assert len(digital) > 0 and digital["value"].null_count() == len(digital)


def test_system_states_on_numeric_points(emulator: Emulator, expected: Expected) -> None:
    points = _points_with(
        expected, lambda p: p.is_numeric and p.system_rate > 0 and p.spacing_us <= 30_000_000, 4
    )
    start, end = NOW - timedelta(days=1), NOW
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded([p.web_id for p in points], start, end)
    system = got.filter(got["is_system"])
    assert len(system) > 0
    assert system["good"].to_list() == [False] * len(system)
    assert system["value"].null_count() == len(system)
    assert set(system["value_text"].to_list()) <= {"I/O Timeout", "Shutdown", "Bad Input", "Over Range",
                                                   "Under Range", "Scan Off", "No Data"}  # fmt: skip
    assert_same(got, expected.recorded(points, start, end, include_end=False))
