"""Measure the Delta commit conflict rate of concurrent shard runs on one pi_timeseries table.

N processes (one per shard) replace their shard's rows of the same hour at the same moment, ROUNDS times, through
the platform's own `DeltaTableRef.replace_window` and its bounded commit retries, in two layouts:

* `date+shard`: the sharded layout (Delta partitions (date, shard), replace predicate `shard = 'i'`);
* `date`: the unsharded partitioning with each shard's web ids as the predicate (what sharding without a shard
  partition would be).

Prints commits, lost races (retries), give-ups and the row check per layout:
`.venv/bin/python scripts/shard_conflicts.py --shards 4 --rounds 20`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from osipi_dagster.lib.lake import DeltaTableRef, LakeConflictError  # noqa: E402
from osipi_dagster.lib.landing.shards import partition_columns, shard_of  # noqa: E402

HOUR = datetime(2024, 5, 1, 9, tzinfo=UTC)
TAGS = 400


def rows(shard: int, shards: int, value: float, sharded: bool) -> pl.DataFrame:
    ids = [f"W{i:05d}" for i in range(TAGS) if shard_of(f"W{i:05d}", shards) == shard]
    frame = pl.DataFrame(
        [(w, HOUR + timedelta(seconds=s)) for w in ids for s in range(0, 3600, 60)],
        schema={"web_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC")},
        orient="row",
    ).with_columns(pl.lit(value).alias("value"), pl.col("timestamp").dt.date().alias("date"))
    return frame.with_columns(pl.lit(str(shard)).alias("shard")) if sharded else frame


def write(uri: str, shard: int, shards: int, value: float, sharded: bool) -> int:
    frame = rows(shard, shards, value, sharded)
    scope: dict[str, Any] = (
        {"shard": str(shard)} if sharded else {"web_id": frame["web_id"].unique().to_list()}
    )
    result = DeltaTableRef(uri).replace_window(
        lambda: frame,
        column="timestamp",
        start=HOUR,
        end=HOUR + timedelta(hours=1),
        partition_by=partition_columns(shards) if sharded else ["date"],
        extra_predicate=scope,
    )
    return result.attempts


def worker(uri: str, shard: int, shards: int, rounds: int, sharded: bool, barrier: Any, out: Any) -> None:
    attempts, gave_up = [], 0
    for round_ in range(1, rounds + 1):
        barrier.wait(timeout=300)
        try:
            attempts.append(write(uri, shard, shards, float(round_), sharded))
        except LakeConflictError:
            gave_up += 1
    out.put((attempts, gave_up))


def measure(shards: int, rounds: int, sharded: bool) -> dict[str, Any]:
    uri = str(Path(tempfile.mkdtemp(prefix="shard_conflicts_")) / "pi_timeseries")
    for shard in range(shards):  # the table and every shard's first hour exist before the race
        write(uri, shard, shards, 0.0, sharded)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(shards), ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(uri, s, shards, rounds, sharded, barrier, out))
        for s in range(shards)
    ]
    began = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - began
    attempts = [a for r in results for a in r[0]]
    table = pl.read_delta(uri)
    ok = table.height == TAGS * 60 and table.select(pl.struct("web_id", "timestamp").is_unique().all()).item()
    return {
        "layout": "date+shard" if sharded else "date",
        "shards": shards,
        "commits": len(attempts),
        "lost_races": sum(a - 1 for a in attempts),
        "conflict_rate": round(sum(a - 1 for a in attempts) / max(1, sum(attempts)), 3),
        "max_attempts": max(attempts, default=0),
        "gave_up": sum(r[1] for r in results),
        "rows_ok": ok,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[4])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for shards in args.shards:
        for sharded in (True, False):
            print(measure(shards, args.rounds, sharded), flush=True)


if __name__ == "__main__":
    main()
