"""Benchmark of the PI client: 10,000 tags × 1 hour of recorded values against mock_pi with 20 ms injected latency.

Compares (a) one request per tag, sequentially (timed on a sample, extrapolated), (b) the client's default strategy,
(c) the raw-fetch ceiling (exactly the requests (b) made, bodies downloaded but not decoded); prints a table.
Run: .venv/bin/python bench/bench_client.py [--tags 10000] [--latency 20ms] [--sample 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mock_pi.process import start_emulator
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.decode import decode_streamset

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def all_web_ids(pi: PIWebAPIClient) -> list[str]:
    return [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]


def per_tag_sequential(
    api: str, web_ids: list[str], start: datetime, end: datetime
) -> tuple[float, int, int]:
    """(a): GET /streams/{id}/recorded one tag after the other (maxCount high enough for one call per tag)."""
    calls = values = 0
    t0 = time.perf_counter()
    with PIWebAPIClient(ClientConfig(api, max_concurrency=1)) as pi:
        for w in web_ids:
            body = pi.get(
                f"streams/{w}/recorded",
                [("startTime", start.isoformat()), ("endTime", end.isoformat()), ("maxCount", "150000")],
            )
            frame = decode_streamset({"Items": [{"WebId": w, "Items": body.get("Items") or []}]})
            values += len(frame)
        calls = pi.stats.http_calls
    return time.perf_counter() - t0, calls, values


def default_strategy(api: str, web_ids: list[str], start: datetime, end: datetime, concurrency: int):  # type: ignore[no-untyped-def]
    """(b): pi.recorded(...) with request logging so (c) can replay the very same calls."""
    log: list[httpx.Request] = []
    with PIWebAPIClient(ClientConfig(api, max_concurrency=concurrency)) as pi:
        pi.session.client.event_hooks["request"].append(log.append)
        t0 = time.perf_counter()
        frame = pi.recorded(web_ids, start, end)
        elapsed = time.perf_counter() - t0
        stats = pi.stats.as_dict()
    return elapsed, stats, len(frame), [(r.method, str(r.url), r.content, dict(r.headers)) for r in log]


def raw_ceiling(
    requests: list[tuple[str, str, bytes, dict[str, str]]], concurrency: int
) -> tuple[float, int, int]:
    """(c): the same requests, same concurrency and pool, bodies read but never parsed."""
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    with httpx.Client(limits=limits, timeout=60.0) as client:

        def fetch(req: tuple[str, str, bytes, dict[str, str]]) -> int:
            method, url, content, headers = req
            return len(client.request(method, url, content=content or None, headers=headers).content)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            sizes = list(pool.map(fetch, requests))
        return time.perf_counter() - t0, len(requests), sum(sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tags", type=int, default=10_000)
    ap.add_argument("--latency", default="20ms")
    ap.add_argument("--sample", type=int, default=200, help="tags timed for (a), then extrapolated")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help="also time (b) at concurrency 1, 2, 4, 8, 16")
    args = ap.parse_args()
    start, end = NOW - timedelta(hours=1), NOW
    faults = f"latency:{args.latency}" if args.latency not in ("0", "none") else "none"
    emu_args = (
        "--seed",
        "42",
        "--tags",
        str(args.tags),
        "--clock",
        "frozen:2024-05-01T12:00:00Z",
        "--faults",
        faults,
    )
    with start_emulator(*emu_args, timeout=120) as emu:
        with PIWebAPIClient(ClientConfig(emu.api)) as pi:
            web_ids = all_web_ids(pi)
        print(f"emulator: {len(web_ids)} tags, faults={faults}; window {start:%H:%M}–{end:%H:%M} UTC (1 h)")

        # Warm-up (server caches, connection setup) — not timed.
        default_strategy(emu.api, web_ids[:500], start, end, args.concurrency)

        b_runs = [
            default_strategy(emu.api, web_ids, start, end, args.concurrency) for _ in range(args.repeat)
        ]
        b_time = statistics.median(r[0] for r in b_runs)
        b_stats, b_values, requests = b_runs[0][1], b_runs[0][2], b_runs[0][3]
        c_runs = [raw_ceiling(requests, args.concurrency) for _ in range(args.repeat)]
        c_time = statistics.median(r[0] for r in c_runs)
        step = max(1, len(web_ids) // args.sample)
        sample = web_ids[::step][: args.sample]
        a_time, a_calls, a_values = per_tag_sequential(emu.api, sample, start, end)
        scale = len(web_ids) / len(sample)
        a_total, a_calls_total, a_values_total = a_time * scale, int(a_calls * scale), int(a_values * scale)

        print()
        print(f"{'strategy':<46}{'wall s':>10}{'HTTP calls':>12}{'values':>12}{'values/s':>14}")
        rows = [
            (
                f"(a) per tag, sequential (extrapolated from {len(sample)})",
                a_total,
                a_calls_total,
                a_values_total,
            ),
            (
                f"(b) default: stream sets + batch, {args.concurrency} threads",
                b_time,
                b_stats["http_calls"],
                b_values,
            ),
            ("(c) raw-fetch ceiling: same calls, no decode", c_time, c_runs[0][1], b_values),
        ]
        for name, t, calls, values in rows:
            print(f"{name:<46}{t:>10.2f}{calls:>12}{values:>12}{values / t:>14,.0f}")
        print()
        print(
            f"(b) vs (a): {a_total / b_time:.0f}x faster; (b)/(c) = {b_time / c_time:.2f} "
            f"(bytes {b_stats['bytes_received'] / 1e6:.1f} MB; runs b={[round(r[0], 2) for r in b_runs]}, "
            f"c={[round(r[0], 2) for r in c_runs]})"
        )
        if args.sweep:
            print()
            for conc in (1, 2, 4, 8, 16):
                t = statistics.median(
                    default_strategy(emu.api, web_ids, start, end, conc)[0] for _ in range(2)
                )
                print(f"(b) with max_concurrency={conc:>2}: {t:.2f} s")


if __name__ == "__main__":
    main()
