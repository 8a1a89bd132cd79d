"""Partition sizing of the `osipi` source (pure functions, no Spark): slices of one PI call's worth, balanced."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from osipi_dagster.spark.planning import HEADROOM, Slice, balance, even_slices, recorded_slices
from osipi_dagster.spark.work import day_slices

START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(hours=6)


def test_busy_tags_are_cut_in_time_and_quiet_ones_packed() -> None:
    counts = {"busy": 1_000_000, "a": 40_000, "b": 40_000, "c": 40_000, "d": 40_000, "idle": 0}
    slices = recorded_slices(list(counts), counts, START, END, budget=150_000)

    busy = [s for s in slices if s.web_ids == ("busy",)]
    assert len(busy) == 8  # 1.2 M expected values / 150,000
    assert busy[0].start == START and busy[-1].end == END
    assert all(x.end == y.start for x, y in itertools.pairwise(busy))  # contiguous, half-open
    assert all(s.weight <= 150_000 for s in slices)
    packed = [s for s in slices if s.web_ids != ("busy",)]
    # 48,000 each with headroom: three fit in one call's worth; the idle tag (weight 1) joins the next shard.
    assert [s.web_ids for s in packed] == [("a", "b", "c"), ("d", "idle")]
    assert packed[0].weight == pytest.approx(3 * 40_000 * HEADROOM)
    assert all((s.start, s.end) == (START, END) for s in packed)


def test_shards_hold_at_most_max_tags_even_when_idle() -> None:
    ids = [f"w{i}" for i in range(25)]
    slices = recorded_slices(ids, {}, START, END, budget=150_000, max_tags=10)
    assert [len(s.web_ids) for s in slices] == [10, 10, 5]
    assert [w for s in slices for w in s.web_ids] == ids


def test_balance_caps_partitions_and_evens_the_load() -> None:
    weights = [90, 70, 50, 40, 30, 20, 10, 10, 5, 5]
    slices = [Slice((f"w{i}",), START, END, w) for i, w in enumerate(weights)]
    parts = balance(slices, 3)
    assert len(parts) == 3
    assert sorted(s.web_ids[0] for p in parts for s in p) == sorted(s.web_ids[0] for s in slices)
    loads = [sum(s.weight for s in p) for p in parts]
    assert max(loads) - min(loads) <= max(weights)
    assert loads == [110, 110, 110]  # heaviest first onto the least loaded: a perfect split here
    # Fewer slices than the cap: one partition each, in order.
    assert balance(slices[:2], 8) == [[slices[0]], [slices[1]]]
    with pytest.raises(ValueError, match="at least 1"):
        balance(slices, 0)


def test_even_slices_by_known_sizes_or_by_parts() -> None:
    ids = [f"w{i}" for i in range(10)]
    # 7 interpolated values per tag, budget 20: two tags per shard.
    assert [len(s.web_ids) for s in even_slices(ids, START, END, 7, 20)] == [2] * 5
    # Sizing by tags: at least 4 shards of equal tag counts.
    assert [len(s.web_ids) for s in even_slices(ids, START, END, 1, 150_000, parts=4)] == [3, 3, 3, 1]
    assert even_slices([], START, END, 1, 10) == []


def test_event_frame_windows_are_cut_at_utc_midnight() -> None:
    a = datetime(2024, 4, 29, 12, tzinfo=UTC)
    b = datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert day_slices(a, b) == [
        (a, datetime(2024, 4, 30, tzinfo=UTC)),
        (datetime(2024, 4, 30, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)),
        (datetime(2024, 5, 1, tzinfo=UTC), b),
    ]
