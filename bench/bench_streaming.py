"""Benchmark of streaming: 10,000 subscribed tags → channel listener (subprocess) → spool → micro-batches → Delta.

Prints sustained values/s landed and end-to-end latency p50/p95 (PI timestamp → committed in the lake), with the
emulator on a real-time clock so PI timestamps and wall time agree. Micro-batches are landed every --batch-s seconds,
as the sensor would request them. Run: .venv/bin/python bench/bench_streaming.py [--tags 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import SpoolReader, land_segments
from osipi_dagster_tests.emulator import start_emulator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tags", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--channel-size", type=int, default=1000)
    p.add_argument("--batch-s", type=float, default=2.0)
    p.add_argument("--clock-rate", type=float, default=1.0)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_streaming_"))
    spool_dir, lake = work / "spool", Lake(str(work / "lake"))
    emu_args = ("--tags", str(args.tags), "--clock-rate", str(args.clock_rate), "--channel-poll-ms", "1000")
    with start_emulator(*emu_args, timeout=120) as emu:
        with PIWebAPIClient(ClientConfig(base_url=emu.api)) as pi:
            ids = [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]
        cmd = [sys.executable, "-m", "osipi_dagster.lib.streaming", "listen", "--spool", str(spool_dir)]
        cmd += ["--pi-url", emu.api, "--channel-size", str(args.channel_size), "--segment-age", "1.0"]
        cmd += ["--log-level", "WARNING"]
        for w in ids:
            cmd += ["--web-id", w]
        listener = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        reader = SpoolReader(spool_dir)
        reports, warmup_done = [], None
        began = time.monotonic()
        try:
            while time.monotonic() - began < args.seconds:
                time.sleep(args.batch_s)
                names = [s.name for s in reader.ready()]
                if not names:
                    continue
                report = land_segments(lake, reader, names)
                # The first batch carries the subscription's start-up; measure the steady state after it.
                if warmup_done is None:
                    warmup_done = time.monotonic()
                    continue
                reports.append(report)
        finally:
            listener.send_signal(signal.SIGTERM)
            listener.wait(60)
        elapsed = time.monotonic() - (warmup_done or began)
        state = reader.listener_state()
    frame = pl.DataFrame([r.as_dict() for r in reports])
    landed = int(frame["inserted"].sum())
    print(
        f"tags subscribed            {len(ids):,} in {state.get('channels')} channels of {args.channel_size}"
    )
    print(f"emulator clock rate        {args.clock_rate}")
    print(f"micro-batches measured     {len(reports)} over {elapsed:.1f} s (one every ~{args.batch_s:.0f} s)")
    print(f"values landed              {landed:,}  → {landed / elapsed:,.0f} values/s sustained")
    print(
        f"values per micro-batch     median {frame['inserted'].median():,.0f}, max {frame['inserted'].max():,}"
    )
    if args.clock_rate == 1.0:
        p50, p95 = frame["latency_p50_s"].median(), frame["latency_p95_s"].max()
        print(f"latency PI ts → lake       p50 {p50:.2f} s, p95 {p95:.2f} s (worst batch)")
    else:
        print("latency PI ts → lake       n/a: PI timestamps run faster than wall time at this clock rate")
    print(
        f"spool → lake               p50 {frame['spool_to_lake_p50_s'].median():.2f} s, p95 {frame['spool_to_lake_p95_s'].max():.2f} s"
    )
    print(
        f"landing run duration       median {frame['duration_s'].median():.2f} s, max {frame['duration_s'].max():.2f} s"
    )
    print(
        f"listener                   messages {state.get('messages')}, reconnects {state.get('reconnects')}, "
        f"heartbeats {state.get('heartbeats')}, gap values {state.get('gap_values')}"
    )


if __name__ == "__main__":
    main()
