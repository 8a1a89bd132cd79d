"""The scale-out benchmark's arithmetic and table (bench/bench_scaleout.py) on hand-made run facts; the benchmark
itself (Postgres, emulators, the daemon) runs with `make bench` only."""

from __future__ import annotations

from bench.bench_scaleout import most_at_once, partition_keys, render, summarise, verdict


def fact(created: float, launched: float, end: float, attempts: int = 1, status: str = "SUCCESS") -> dict:
    return {
        "status": status,
        "created": created,
        "launched": launched,
        "start": launched + 1.0,
        "end": end,
        "duration_s": 0.5,
        "write_duration_s": 0.25,
        "write_attempts": attempts,
    }


def test_partition_keys_are_hour_by_shard_or_hours() -> None:
    assert partition_keys(2, 2) == [
        "2024-05-01-09:00|0",
        "2024-05-01-09:00|1",
        "2024-05-01-10:00|0",
        "2024-05-01-10:00|1",
    ]
    assert partition_keys(2, 1) == ["2024-05-01-09:00", "2024-05-01-10:00"]


def test_most_at_once_counts_overlapping_runs_only() -> None:
    assert most_at_once([(0, 10), (5, 15), (9, 20)]) == 3
    # A run ending when the next starts does not overlap it.
    assert most_at_once([(0, 10), (10, 20)]) == 1
    assert most_at_once([]) == 0


def test_summarise_wall_overhead_and_lost_races() -> None:
    runs = [fact(100.0, 101.0, 111.0), fact(100.5, 102.0, 120.0, attempts=3), fact(101.0, 112.0, 118.0)]
    got = summarise(runs, submitted=90.0, rows=20_000, versions=4)
    assert got["pickup_s"] == 10.0  # submission → first run created
    assert got["wall_s"] == 20.0  # first run created → last run ended
    assert got["values_per_s"] == 1000.0
    assert got["most_at_once"] == 2
    assert got["run_wall_s"] == round((10 + 18 + 6) / 3, 2)
    assert got["overhead_s"] == round((10 + 18 + 6) / 3 - 0.75, 2)
    # Two lost races out of five commit attempts.
    assert (got["lost_races"], got["conflict_rate"]) == (2, 0.4)
    assert (got["runs"], got["failed"], got["commits"]) == (3, 0, 4)


def test_summarise_counts_failed_runs_apart() -> None:
    runs = [fact(0.0, 1.0, 5.0, status="FAILURE"), fact(0.0, 6.0, 10.0)]
    got = summarise(runs, submitted=0.0, rows=100, versions=1)
    assert (got["runs"], got["failed"]) == (2, 1)
    assert got["overhead_s"] == round(4 - 0.75, 2)  # successful runs only


def row(emulators: int, shards: int, vps: float, cpu_runs: float) -> dict:
    return {
        "emulators": emulators,
        "shards": shards,
        "runs": shards * 2,
        "failed": 0,
        "most_at_once": shards,
        "wall_s": 10.0,
        "values": int(vps * 10),
        "values_per_s": vps,
        "run_wall_s": 5.0,
        "asset_s": 0.5,
        "overhead_s": 4.5,
        "cpu_per_run_s": cpu_runs,
        "commits": shards * 2,
        "lost_races": 0,
        "cpu": {"daemon": 3.0, "code_server": 1.0, "runs": cpu_runs * shards * 2, "machine_busy": 0.97},
    }


def test_render_speedup_against_one_shard_of_the_same_emulator_count() -> None:
    lines = render([row(1, 1, 1000, 4.0), row(1, 2, 1500, 4.0), row(2, 1, 2000, 4.0), row(2, 4, 3000, 4.0)])
    assert len(lines) == 6 and lines[1].count("---") == lines[0].count("|") - 1
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [c[7] for c in cells] == ["1.00", "1.50", "1.00", "1.50"]
    assert cells[1][6] == "1,500" and cells[1][-1] == "97%"


def test_verdict_names_the_shard_count_where_gains_stop() -> None:
    rows = [row(1, 1, 1000, 4.0), row(1, 2, 1500, 4.5), row(1, 4, 1550, 5.0), row(1, 8, 1200, 6.0)]
    text = verdict(rows, cores=2)
    assert text.startswith("values/s stops scaling beyond 2 shards (going to 4 changes it by +3%)")
    assert "best 1,550 values/s at 4 shards (1.55× 1 shard)" in text
    assert "97% busy (2 cores)" in text and "4.0–6.0 CPU s" in text
    # 8 shards: 16 runs of 750 values at 6 CPU s each on 2 cores → 2 / 6 × 750 = 250 values/s.
    assert (
        "0.33–0.50 runs/s" in text and "(750 values per run) that caps this machine near 250 values/s" in text
    )
    assert verdict([row(1, 1, 1000, 4.0), row(1, 2, 1900, 4.0)]).startswith("values/s still rises up to 2")
