"""Concurrent commits of shard runs to one Delta table: 4 processes replace their shard's hours over and over at
the same moments; nothing is lost or duplicated, every write is exactly one commit, and no commit loses a race
(the (date, shard) partitions keep the shards' files disjoint). The streaming lander's rows take their tag's shard.
Read back with deltalake's own pyarrow reader."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.landing.recorded import owned_rows
from osipi_dagster.lib.landing.shards import (
    check_layout,
    partition_columns,
    record_layout,
    shard_of,
    table_shards,
)
from osipi_dagster.lib.streaming.landing import insert_absent

SHARDS, ROUNDS, HOURS = 4, 6, 2
DAY = datetime(2024, 5, 1, tzinfo=UTC)
WEB_IDS = [f"W{i:03d}" for i in range(40)]
# Spawned processes import polars and deltalake first: on a loaded machine that takes a while.
BARRIER_S = 200


def shard_rows(shard: int, hour: int, value: float) -> pl.DataFrame:
    """One shard's tags in one hour, a value every 5 minutes, shaped like the sharded pi_timeseries."""
    start = DAY + timedelta(hours=hour)
    ids = [w for w in WEB_IDS if shard_of(w, SHARDS) == shard]
    rows = [(w, start + timedelta(minutes=m)) for w in ids for m in range(0, 60, 5)]
    frame = pl.DataFrame(
        rows, schema={"web_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC")}, orient="row"
    )
    return frame.with_columns(
        pl.lit(value).alias("value"),
        pl.lit(0, dtype=pl.Int32).alias("ordinal"),
        pl.col("web_id").alias("tag"),
        pl.lit(start).alias("ingested_at"),
        pl.lit("recorded").alias("source"),
        pl.col("timestamp").dt.date().alias("date"),
        pl.lit(str(shard)).alias("shard"),
    )


def replace(ref: DeltaTableRef, shard: int, hour: int, value: float) -> int:
    """A shard run's commit: its window and its shard partition; the number of attempts it took."""
    start = DAY + timedelta(hours=hour)
    result = ref.replace_window(
        lambda: shard_rows(shard, hour, value),
        column="timestamp",
        start=start,
        end=start + timedelta(hours=1),
        partition_by=partition_columns(SHARDS),
        extra_predicate=owned_rows([], "*", str(shard)),
    )
    return result.attempts


def shard_process(uri: str, shard: int, barrier: Any, out: Any) -> None:
    try:
        ref = DeltaTableRef(uri)
        attempts = []
        for round_ in range(1, ROUNDS + 1):
            for hour in range(HOURS):
                barrier.wait(timeout=BARRIER_S)  # every shard commits the same hour at the same moment
                attempts.append(replace(ref, shard, hour, float(round_)))
        out.put((shard, attempts))
    except BaseException as exc:  # reported, so the test fails with it instead of waiting for the queue
        barrier.abort()
        out.put((shard, repr(exc)))


@pytest.mark.timeout(600)  # spawned processes on a loaded 2-core machine
def test_four_shard_processes_commit_concurrently_without_loss_duplicates_or_conflicts(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "pi_timeseries")
    ref = DeltaTableRef(uri)
    for hour in range(HOURS):  # the table exists before the storm, as after a first hour
        for shard in range(SHARDS):
            replace(ref, shard, hour, 0.0)
    record_layout(ref, SHARDS)
    version = DeltaTable(uri).version()

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(SHARDS), ctx.Queue()
    procs = [ctx.Process(target=shard_process, args=(uri, s, barrier, out)) for s in range(SHARDS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=540) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(isinstance(a, list) for a in results.values()), results

    table = pl.from_arrow(DeltaTable(uri).to_pyarrow_table())
    assert isinstance(table, pl.DataFrame)
    assert table.height == len(WEB_IDS) * 12 * HOURS
    assert table.select(pl.struct("web_id", "timestamp").is_unique().all()).item()
    assert table["value"].unique().to_list() == [float(ROUNDS)]
    assert table["shard"].to_list() == [str(shard_of(w, SHARDS)) for w in table["web_id"].to_list()]
    # Every write is one commit, and none had to be retried: the shards' partitions are disjoint.
    assert DeltaTable(uri).version() == version + SHARDS * ROUNDS * HOURS
    assert {s: sorted(set(a)) for s, a in results.items()} == {s: [1] for s in range(SHARDS)}


def test_streamed_rows_into_a_sharded_table_land_in_their_shard_and_yield_to_its_run(tmp_path: Path) -> None:
    uri = str(tmp_path / "pi_timeseries")
    ref = DeltaTableRef(uri)
    for shard in range(SHARDS):
        replace(ref, shard, 0, 0.0)
    record_layout(ref, SHARDS)
    # Hour 1 arrives by the stream first (no archive rows there yet): every row lands with its tag's shard.
    streamed = pl.concat([shard_rows(s, 1, 5.0) for s in range(SHARDS)]).drop("shard")
    streamed = streamed.with_columns(pl.lit("stream").alias("source"))
    outcome = insert_absent(ref, streamed, label="test")
    assert outcome.inserted == streamed.height
    table = pl.from_arrow(DeltaTable(uri).to_pyarrow_table())
    assert isinstance(table, pl.DataFrame)
    hour1 = table.filter(pl.col("timestamp") >= DAY + timedelta(hours=1))
    assert hour1["shard"].to_list() == [str(shard_of(w, SHARDS)) for w in hour1["web_id"].to_list()]
    # Shard 2's recorded run of hour 1 replaces that shard's streamed rows only; nothing is duplicated.
    replace(ref, 2, 1, 9.0)
    table = pl.from_arrow(DeltaTable(uri).to_pyarrow_table())
    assert isinstance(table, pl.DataFrame)
    hour1 = table.filter(pl.col("timestamp") >= DAY + timedelta(hours=1))
    assert hour1.height == streamed.height
    assert table.select(pl.struct("web_id", "timestamp").is_unique().all()).item()
    by_shard = dict(hour1.group_by("shard").agg(pl.col("source").unique().sort()).iter_rows())
    assert by_shard == {"0": ["stream"], "1": ["stream"], "2": ["recorded"], "3": ["stream"]}


def first_run(uri: str, shard: int, barrier: Any, out: Any) -> None:
    """A shard run's lake steps on a table that may not exist yet: check, replace, record the layout."""
    try:
        ref = DeltaTableRef(uri)
        barrier.wait(timeout=BARRIER_S)
        check_layout(ref, SHARDS)
        attempts = replace(ref, shard, 0, 1.0)
        record_layout(ref, SHARDS)
        out.put((shard, attempts))
    except BaseException as exc:
        barrier.abort()
        out.put((shard, repr(exc)))


@pytest.mark.timeout(600)
def test_first_shard_runs_race_to_create_the_table_and_all_land(tmp_path: Path) -> None:
    uri = str(tmp_path / "pi_timeseries")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(SHARDS), ctx.Queue()
    procs = [ctx.Process(target=first_run, args=(uri, s, barrier, out)) for s in range(SHARDS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=540) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(isinstance(a, int) for a in results.values()), results
    table = pl.from_arrow(DeltaTable(uri).to_pyarrow_table())
    assert isinstance(table, pl.DataFrame)
    assert table.height == len(WEB_IDS) * 12
    assert table.select(pl.struct("web_id", "timestamp").is_unique().all()).item()
    assert table_shards(DeltaTableRef(uri)) == SHARDS
    # One creates the table, the others lose that race once or twice and replace on it: bounded, no storm.
    assert sorted(results) == list(range(SHARDS)) and max(results.values()) <= 3
