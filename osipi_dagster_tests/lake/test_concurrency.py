"""Concurrent writers: different windows of one table both land; lost commit races are retried or reported.

A Barrier starts the threads together; the deterministic race uses a writer that commits while another streams.
"""

from __future__ import annotations

import threading

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, LakeConflictError, WriteResult

from .conftest import at, hour_of, read_back


def one_file_table(lake: Lake, name: str, hours: int):
    """All hours in one data file: replacing any hour rewrites the others, so concurrent replaces really conflict."""
    t = lake.table(name)
    t.replace_window(
        pl.concat([hour_of(h, 0.0) for h in range(hours)]), column="timestamp", start=at(0), end=at(hours)
    )
    assert len(DeltaTable(t.uri).file_uris()) == 1
    return t


def test_two_threads_replacing_different_windows_both_succeed(lake: Lake) -> None:
    t = one_file_table(lake, "pi_timeseries", 4)
    results: dict[int, WriteResult] = {}
    errors: list[BaseException] = []
    rounds = 4

    def writer(hour: int, barrier: threading.Barrier, value: float) -> None:
        try:
            barrier.wait(timeout=30)
            results[hour] = t.replace_window(
                hour_of(hour, value), column="timestamp", start=at(hour), end=at(hour + 1)
            )
        except BaseException as exc:
            errors.append(exc)

    for round_ in range(1, rounds + 1):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=writer, args=(h, barrier, float(round_))) for h in (0, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert {h: r.rows_written for h, r in results.items()} == {0: 4, 2: 4}
    got = read_back(t.uri)
    per_hour = (
        got.group_by(pl.col("timestamp").dt.hour()).agg(pl.len(), pl.col("value").max()).sort("timestamp")
    )
    assert per_hour.rows() == [(0, 4, 4.0), (1, 4, 0.0), (2, 4, 4.0), (3, 4, 0.0)]
    assert t.version() == 2 * rounds  # every write is exactly one commit, however many attempts it took


def rival_factory(t, calls: dict[str, int]):
    def rival_commits_midstream():
        # While this write streams, another writer replaces hour 2 and commits first: this commit loses the race.
        calls["n"] += 1
        yield hour_of(0, 1.0).head(2)
        if calls["n"] == 1:
            rival = threading.Thread(
                target=t.replace_window,
                args=(hour_of(2, 9.0),),
                kwargs={"column": "timestamp", "start": at(2), "end": at(3)},
            )
            rival.start()
            rival.join(timeout=60)
        yield hour_of(0, 1.0).tail(2)

    return rival_commits_midstream


def test_lost_race_is_retried_when_the_input_is_a_factory(lake: Lake) -> None:
    t = one_file_table(lake, "pi_timeseries", 3)
    calls = {"n": 0}
    result = t.replace_window(rival_factory(t, calls), column="timestamp", start=at(0), end=at(1))
    assert result.attempts == 2 and calls["n"] == 2
    assert result.version == 2  # version 1 is the rival
    got = read_back(t.uri)
    assert got.group_by(pl.col("timestamp").dt.hour()).agg(pl.len(), pl.col("value").max()).sort(
        "timestamp"
    ).rows() == [
        (0, 4, 1.0),
        (1, 4, 0.0),
        (2, 4, 9.0),
    ]


def test_lost_race_with_a_one_shot_iterator_is_reported_not_half_written(lake: Lake) -> None:
    t = one_file_table(lake, "pi_timeseries", 3)
    with pytest.raises(LakeConflictError, match="single-use iterator"):
        t.replace_window(rival_factory(t, {"n": 0})(), column="timestamp", start=at(0), end=at(1))
    assert t.version() == 1  # only the rival's commit
    got = read_back(t.uri)
    assert got.filter(pl.col("value") == 1.0).height == 0 and got.filter(pl.col("value") == 9.0).height == 4


def test_concurrent_first_writes_create_the_table_once(lake: Lake) -> None:
    t = lake.table("fresh")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def writer(hour: int) -> None:
        try:
            barrier.wait(timeout=30)
            t.replace_window(hour_of(hour, float(hour)), column="timestamp", start=at(hour), end=at(hour + 1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(h,)) for h in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert read_back(t.uri).equals(pl.concat([hour_of(h, float(h)) for h in range(3)]))
