"""The benchmark scenarios of issue 8: discovery, AF, event frames, end-to-end backfill, raw ceiling, naive.

Each function starts its own emulator(s) on 127.0.0.1, measures `repeat` runs and returns `Figure`s.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


def _replay(requests: list[dict[str, Any]], concurrency: int) -> tuple[float, int, float]:
    """Raw-fetch ceiling: the same requests, same pool and concurrency, bodies read and never parsed.
    Returns (wall s, bytes, CPU s of this process)."""
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    with client_cpus(), httpx.Client(limits=limits, timeout=300.0) as client:

        def fetch(req: dict[str, Any]) -> int:
            body = req["content"].encode("utf-8") or None
            return len(
                client.request(req["method"], req["url"], content=body, headers=req["headers"]).content
            )

        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(concurrency) as pool:
            nbytes = sum(pool.map(fetch, requests))
        return time.perf_counter() - t0, nbytes, time.process_time() - c0


def _naive(api: str, web_ids: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    """One request per tag, sequential (a one-stream call each, continued if cut at maxCount), decoded."""
    values = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with client_cpus(), PIWebAPIClient(ClientConfig(api, max_concurrency=1)) as pi:
        for w in web_ids:
            values += pi.recorded([w], start, end).height
        calls = pi.stats.http_calls
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "values": values,
        "http_calls": calls,
    }


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse any name lookup but loopback while the block runs: tagreader has a built-in default server URL
    (Equinor's), and the benchmark must never reach it."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise OSError(f"bench guard: {name} is not loopback; the benchmark stays on 127.0.0.1")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def _tagreader(api: str, points: list[tuple[str, str]], start: datetime, end: datetime) -> dict[str, Any]:
    """Equinor's tagreader as its docs show it: one IMSClient per data server (PI Web API handler, its default
    options: no cache, max_rows 10,000, Oslo time zone), `read(tag, start, end, read_type=RAW)` tag by tag into
    pandas. Its data-server lookup goes through a built-in URL, pointed here at the emulator (as any user outside
    Equinor must); the emulator is anonymous, so its auth is a no-op (tagreader would otherwise use Kerberos)."""
    import tagreader
    import tagreader.web_handlers
    from tagreader import ReaderType

    by_server: dict[str, list[str]] = {}
    for server, name in points:
        by_server.setdefault(server, []).append(name)
    values = 0
    builtin = tagreader.web_handlers.get_url_pi
    tagreader.web_handlers.get_url_pi = lambda: api  # type: ignore[assignment]
    try:
        with loopback_only(), client_cpus():
            t0, c0 = time.perf_counter(), time.process_time()
            for server, names in by_server.items():
                client = tagreader.IMSClient(datasource=server, imstype="piwebapi", url=api, auth=lambda r: r)
                client.connect()
                for name in names:
                    values += len(client.read(name, start, end, read_type=ReaderType.RAW))
                client.handler.session.close()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        tagreader.web_handlers.get_url_pi = builtin  # type: ignore[assignment]
    return {"wall_s": wall, "cpu_s": cpu, "values": values}


def _sample(items: list[Any], n: int) -> list[Any]:
    """`n` evenly spaced items (all of them when n >= len)."""
    step = max(1, len(items) // n)
    return items[::step][:n]


def backfill(
    tags: int,
    hours: int,
    latency_ms: int,
    repeat: int,
    *,
    ceiling: bool = True,
    naive_sample: int = 0,
    tagreader_sample: int = 0,
    timeout_s: float = 3600.0,
    scenario: str = "backfill",
) -> list[Figure]:
    """End to end through Dagster into Delta (pi_timeseries for the window, one range run), plus optionally the
    raw-fetch ceiling of the very requests the run made, the naive approach and tagreader on samples of tags
    (a sample >= the tag count reads every tag). `scenario` names the end-to-end figure ("backfill", "shape")."""
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
            e2e = Figure(scenario, label, latency_ms, cmd_run, extra={"tags": tags, "hours": hours})
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
                    secs, nbytes, cpu = _replay(requests, 8)
                    c.runs.append(
                        {"wall_s": secs, "cpu_s": cpu, "http_calls": len(requests), "mb": nbytes / 1e6,
                         "values": values, "values_per_s": values / secs}
                    )  # fmt: skip
                figures.append(c)
            points: list[tuple[str, str, str]] = []
            if naive_sample or tagreader_sample:
                with PIWebAPIClient(ClientConfig(emu.api)) as pi:
                    points = [
                        (s.name, w, n)
                        for s in pi.data_servers()
                        for f in pi.iter_points(s)
                        for w, n in zip(f["web_id"].to_list(), f["name"].to_list(), strict=True)
                    ]
            if tagreader_sample:
                picked = _sample(points, tagreader_sample)
                scale = len(points) / len(picked)
                t = Figure(
                    "tagreader",
                    label,
                    latency_ms,
                    f"{emulator_cmd(tags, latency_ms)}; tagreader 6.3 IMSClient(server, 'piwebapi').read(tag, "
                    f"start, end, read_type=RAW) for {len(picked)} tags one after the other"
                    + (f", extrapolated ×{scale:.0f}" if scale > 1 else ""),
                    note=(
                        f"sampled: {len(picked)} tags timed, wall time, calls and values extrapolated to "
                        f"{len(points):,}"
                        if scale > 1
                        else ""
                    ),
                )
                for _ in range(1 if scale > 1 else repeat):
                    reset_metrics(emu)
                    got = _tagreader(emu.api, [(p[0], p[2]) for p in picked], start, end)
                    calls = metrics(emu)["requests"]
                    t.runs.append(
                        {"wall_s": got["wall_s"] * scale, "cpu_s": got["cpu_s"] * scale,
                         "http_calls": round(calls * scale), "values": round(got["values"] * scale),
                         "values_per_s": got["values"] / got["wall_s"], "sample_wall_s": got["wall_s"],
                         "sample_tags": len(picked), "sample_values": got["values"]}
                    )  # fmt: skip
                figures.append(t)
            if naive_sample:
                ids = [p[1] for p in points]
                sample = _sample(ids, naive_sample)
                scale = len(ids) / len(sample)
                got = _naive(emu.api, sample, start, end)
                n = Figure(
                    "naive",
                    label,
                    latency_ms,
                    f"{emulator_cmd(tags, latency_ms)}; pi.recorded([tag]) for {len(sample)} evenly spaced tags "
                    f"one after the other (max_concurrency=1)"
                    + (f", extrapolated ×{scale:.0f}" if scale > 1 else ""),
                    note=(
                        f"sampled: {len(sample)} tags timed, wall time, calls and values extrapolated to {len(ids):,}"
                        if scale > 1
                        else ""
                    ),
                )
                n.runs.append(
                    {"wall_s": got["wall_s"] * scale, "http_calls": round(got["http_calls"] * scale),
                     "values": round(got["values"] * scale), "values_per_s": got["values"] / got["wall_s"],
                     "cpu_s": got["cpu_s"] * scale, "sample_wall_s": got["wall_s"], "sample_tags": len(sample)}
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
