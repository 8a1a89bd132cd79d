"""The benchmark scenarios of issue 8: discovery, AF, event frames, end-to-end backfill, raw ceiling, naive.

Each function starts its own emulator(s) on 127.0.0.1, measures `repeat` runs and returns `Figure`s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from bench.common import Figure, client_cpus, emulator, emulator_cmd, metrics, reset_metrics, run_child
from osipi_dagster.lib.piwebapi import AssetDatabase, ClientConfig, PIWebAPIClient

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
DAY = (datetime(2024, 4, 30, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC))


def hour_window(hours: int) -> tuple[datetime, datetime]:
    """`hours` whole hours ending at 11:00 on the frozen clock's day (12:00): fully in the past."""
    end = datetime(2024, 5, 1, 11, tzinfo=UTC)
    return end - timedelta(hours=hours), end


def _timed_client_runs(
    emu_api: str, emu: Any, repeat: int, work: Callable[[PIWebAPIClient], dict[str, Any]]
) -> list[dict[str, Any]]:
    runs = []
    for _ in range(repeat):
        reset_metrics(emu)
        with client_cpus(), PIWebAPIClient(ClientConfig(emu_api)) as pi:
            t0 = time.perf_counter()
            out = work(pi)
            out["wall_s"] = time.perf_counter() - t0
        m = metrics(emu)
        out["http_calls"] = m["requests"]
        out["mb"] = m["bytes_sent"] / 1e6
        runs.append(out)
    return runs


def discovery(points: int, latency_ms: int, repeat: int) -> Figure:
    """Tag discovery: every point of every data server, paged (1,000 per page)."""

    def work(pi: PIWebAPIClient) -> dict[str, Any]:
        n = sum(f.height for s in pi.data_servers() for f in pi.iter_points(s))
        return {"items": n}

    with emulator(points, latency_ms) as emu:
        runs = _timed_client_runs(emu.api, emu, repeat, work)
    return Figure(
        "discovery",
        f"{points:,} points, paged",
        latency_ms,
        f"{emulator_cmd(points, latency_ms)}; pi.iter_points(server) for every data server",
        runs,
    )


def _web_ids_per_database(
    pi: PIWebAPIClient, frames: Callable[[AssetDatabase], Iterable[pl.DataFrame]]
) -> list[str]:
    """The web ids of every frame `frames(db)` yields, over every database of every AF server."""
    return [
        web_id
        for server in pi.asset_servers()
        for db in pi.asset_databases(server)
        for frame in frames(db)
        for web_id in frame["web_id"].to_list()
    ]


def af_hierarchy(elements: int, latency_ms: int, repeat: int) -> Figure:
    """AF: the whole element hierarchy of every database, then every element's attributes (PI points resolved)."""
    per_db = max(1, elements // 2)
    extra = ("--elements-per-db", str(per_db))

    def work(pi: PIWebAPIClient) -> dict[str, Any]:
        ids = _web_ids_per_database(pi, pi.iter_elements)
        attributes = sum(f.height for f in pi.iter_attributes(ids))
        return {"items": len(ids), "attributes": attributes}

    with emulator(200, latency_ms, *extra) as emu:
        runs = _timed_client_runs(emu.api, emu, repeat, work)
    return Figure(
        "af",
        f"{elements:,} elements (2 databases) + attributes",
        latency_ms,
        f"{emulator_cmd(200, latency_ms, *extra)}; iter_elements(db) for each database, then iter_attributes(all)",
        runs,
    )


def event_frames(frames_per_day: int, latency_ms: int, repeat: int) -> Figure:
    """Event frames of one UTC day (children included) and their attributes with captured values."""
    per_db = max(1, frames_per_day // 2)
    extra = ("--event-frames-per-day", str(per_db))

    def work(pi: PIWebAPIClient) -> dict[str, Any]:
        ids = _web_ids_per_database(pi, lambda db: pi.iter_event_frames(db, DAY[0], DAY[1]))
        attributes = sum(f.height for f in pi.iter_event_frame_attributes(ids))
        return {"items": len(ids), "attributes": attributes}

    with emulator(200, latency_ms, *extra) as emu:
        runs = _timed_client_runs(emu.api, emu, repeat, work)
    return Figure(
        "event_frames",
        f"1 day, {frames_per_day:,} frames (2 databases) + attributes",
        latency_ms,
        f"{emulator_cmd(200, latency_ms, *extra)}; iter_event_frames(db, 2024-04-30, 2024-05-01) for each "
        "database, then iter_event_frame_attributes(all)",
        runs,
    )


# --- time series --------------------------------------------------------------------------------------------------


def _replay(requests: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    """Raw-fetch ceiling: the same requests, same pool and concurrency, bodies read and never parsed."""
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    with client_cpus(), httpx.Client(limits=limits, timeout=300.0) as client:

        def fetch(req: dict[str, Any]) -> int:
            body = req["content"].encode("utf-8") or None
            return len(
                client.request(req["method"], req["url"], content=body, headers=req["headers"]).content
            )

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            nbytes = sum(pool.map(fetch, requests))
        return time.perf_counter() - t0, nbytes


def _naive(api: str, web_ids: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    """One request per tag, sequential (a one-stream call each, continued if cut at maxCount), decoded."""
    values = 0
    t0 = time.perf_counter()
    with client_cpus(), PIWebAPIClient(ClientConfig(api, max_concurrency=1)) as pi:
        for w in web_ids:
            values += pi.recorded([w], start, end).height
        calls = pi.stats.http_calls
    return {"wall_s": time.perf_counter() - t0, "values": values, "http_calls": calls}


def backfill(
    tags: int,
    hours: int,
    latency_ms: int,
    repeat: int,
    *,
    ceiling: bool = True,
    naive_sample: int = 0,
    timeout_s: float = 3600.0,
) -> list[Figure]:
    """End to end through Dagster into Delta (pi_timeseries for the window, one range run), plus optionally the
    raw-fetch ceiling of the very requests the run made and the naive approach on a sample of tags."""
    start, end = DAY if hours == 24 else hour_window(hours)
    label = f"{tags:,} tags × {hours} h"
    cmd_run = (
        f"{emulator_cmd(tags, latency_ms)}; bench/dagster_run.py catalogue, then bench/dagster_run.py timeseries "
        f"--start {start.isoformat()} --end {end.isoformat()} (fresh copy of the catalogue lake per run)"
    )
    figures = []
    work = Path(tempfile.mkdtemp(prefix="osipi_bench_"))
    try:
        with emulator(tags, latency_ms) as emu:
            base = work / "catalogue"
            run_child(["bench/dagster_run.py", "catalogue", "--api", emu.api, "--lake", str(base)], timeout_s)
            e2e = Figure("backfill", label, latency_ms, cmd_run, extra={"tags": tags, "hours": hours})
            log = work / "requests.jsonl"
            for i in range(repeat):
                lake = work / f"lake{i}"
                shutil.copytree(base, lake)
                reset_metrics(emu)
                args = ["bench/dagster_run.py", "timeseries", "--api", emu.api, "--lake", str(lake)]
                args += ["--start", start.isoformat(), "--end", end.isoformat()]
                if i == 0:
                    args += ["--request-log", str(log)]
                out = run_child(args, timeout_s)
                m = metrics(emu)
                out["http_calls"] = m["requests"]
                out["mb"] = m["bytes_sent"] / 1e6
                out["values_per_s"] = out["values"] / out["wall_s"]
                out["landed_rows"] = _count_rows(lake / "pi_timeseries")
                figures_check(out)
                e2e.runs.append(out)
                shutil.rmtree(lake)
            figures.append(e2e)
            values = int(e2e.runs[0]["values"])
            if ceiling:
                requests = [json.loads(line) for line in log.read_text().splitlines()]
                c = Figure(
                    "ceiling",
                    label,
                    latency_ms,
                    f"{emulator_cmd(tags, latency_ms)}; replay of the {len(requests)} value requests logged "
                    "by the first backfill run, 8 threads, bodies read not parsed",
                )
                for _ in range(repeat):
                    secs, nbytes = _replay(requests, 8)
                    c.runs.append(
                        {"wall_s": secs, "http_calls": len(requests), "mb": nbytes / 1e6, "values": values,
                         "values_per_s": values / secs}
                    )  # fmt: skip
                figures.append(c)
            if naive_sample:
                with PIWebAPIClient(ClientConfig(emu.api)) as pi:
                    ids = [
                        w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()
                    ]
                step = max(1, len(ids) // naive_sample)
                sample = ids[::step][:naive_sample]
                scale = len(ids) / len(sample)
                got = _naive(emu.api, sample, start, end)
                n = Figure(
                    "naive",
                    label,
                    latency_ms,
                    f"{emulator_cmd(tags, latency_ms)}; pi.recorded([tag]) for {len(sample)} evenly spaced tags "
                    f"one after the other (max_concurrency=1), extrapolated ×{scale:.0f}",
                    note=f"sampled: {len(sample)} tags timed, wall time, calls and values extrapolated to {len(ids):,}",
                )
                n.runs.append(
                    {"wall_s": got["wall_s"] * scale, "http_calls": round(got["http_calls"] * scale),
                     "values": round(got["values"] * scale), "values_per_s": got["values"] / got["wall_s"],
                     "sample_wall_s": got["wall_s"], "sample_tags": len(sample)}
                )  # fmt: skip
                figures.append(n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _count_rows(table: Path) -> int:
    """Rows in the Delta table, counted by polars' own Delta reader (independent of the lake writer)."""
    import polars as pl

    return int(pl.scan_delta(str(table)).select(pl.len()).collect().item())


def figures_check(out: dict[str, Any]) -> None:
    """A run only counts if what the asset reports landed is what an independent reader finds in the table."""
    if out["landed_rows"] != out["values"]:
        raise RuntimeError(
            f"backfill run reported {out['values']} values but the Delta table holds {out['landed_rows']} rows"
        )
