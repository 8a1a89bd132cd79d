"""`make bench`: every scenario of issue 8 against emulators on 127.0.0.1, with and without 20 ms latency.

Writes the results as JSON (bench/results/) and, for full runs, the generated section of docs/performance.md plus
docs/img/bench.png. Run: .venv/bin/python bench/run_all.py [--quick] [--repeat N] [--only a,b] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_scaleout, report, scenarios, streaming_table
from bench.common import PYTHON, ROOT, Figure, machine

# name → (full size, quick size). Sizes fit 2 cores / 24 GiB; quick is the < 2 min smoke run.
SIZES: dict[str, tuple[Any, Any]] = {
    "discovery": (100_000, 5_000),
    "af": (10_000, 1_000),
    "event_frames": (10_000, 1_000),
    # (tags, hours, ceiling, naive sample)
    "backfill": ([(10_000, 24, True, 100), (30_000, 1, True, 200)], [(1_000, 1, True, 40)]),
    # issue 17's workload shapes, each against tagreader, the ceiling and naive in the same run:
    # (tags, hours, latency ms, tagreader sample, naive sample); a sample >= tags reads every tag.
    "shapes": (
        [
            (60, 24, 0, 60, 60),
            (1_000, 24, 0, 1_000, 100),
            (10_000, 1, 20, 200, 200),
            (30_000, 1, 20, 200, 200),
        ],
        [(60, 6, 0, 60, 60)],
    ),
    # values/s from 1k to 30k tags (30k × 1 h is measured by "backfill"); no latency, no references.
    "scaling": ([(1_000, 1), (3_000, 1), (10_000, 1)], [(300, 1)]),
    # peak RSS against window length at a fixed tag count (no latency, no references).
    "memory": ([(10_000, 1), (10_000, 6), (10_000, 24)], [(300, 1), (300, 6)]),
}
SCENARIOS = (
    "discovery",
    "af",
    "event_frames",
    "backfill",
    "shapes",
    "scaling",
    "memory",
    "streaming",
    "scaleout",
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    size = {k: v[1] if quick else v[0] for k, v in SIZES.items()}
    repeat = args.repeat or (1 if quick else 3)
    latencies = [0, 20]
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    figures: list[Figure] = []
    streaming: dict[str, Any] | None = None

    def step(name: str, fn: Callable[[], list[Figure]]) -> None:
        t0 = time.perf_counter()
        got = fn()
        figures.extend(got)
        for f in got:
            wall = f.median("wall_s")
            vps = f.median("values_per_s")
            extra = f", {vps:,.0f} values/s" if vps == vps else ""
            print(
                f"  {f.scenario:<12} {f.label:<42} latency {f.latency_ms:>2} ms: {wall:8.2f} s{extra}",
                flush=True,
            )
        print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)

    for lat in latencies:
        if "discovery" in only:
            step("discovery", lambda lat=lat: [scenarios.discovery(size["discovery"], lat, repeat)])
        if "af" in only:
            step("af", lambda lat=lat: [scenarios.af_hierarchy(size["af"], lat, repeat)])
        if "event_frames" in only:
            step("event_frames", lambda lat=lat: [scenarios.event_frames(size["event_frames"], lat, repeat)])
        if "backfill" in only:
            for tags, hours, ceiling, naive in size["backfill"]:
                step(
                    f"backfill {tags}x{hours}h",
                    lambda lat=lat, t=tags, h=hours, c=ceiling, n=naive: scenarios.backfill(
                        t, h, lat, repeat, ceiling=c, naive_sample=n
                    ),
                )
    if "shapes" in only:
        for tags, hours, lat, reader, naive in size["shapes"]:
            step(
                f"shape {tags}x{hours}h",
                lambda t=tags, h=hours, lat=lat, r=reader, n=naive: scenarios.backfill(
                    t, h, lat, repeat, naive_sample=n, tagreader_sample=r, scenario="shape"
                ),
            )
    if "scaling" in only:
        for tags, hours in size["scaling"]:
            step(
                f"scaling {tags}",
                lambda t=tags, h=hours: scenarios.backfill(t, h, 0, repeat, ceiling=False, naive_sample=0),
            )
    if "memory" in only:
        for tags, hours in size["memory"]:
            step(
                f"memory {tags}x{hours}h",
                lambda t=tags, h=hours: [
                    _as_memory(f) for f in scenarios.backfill(t, h, 0, repeat, ceiling=False, naive_sample=0)
                ],
            )
    stream_script = ROOT / "bench" / "bench_streaming.py"
    if "streaming" in only and stream_script.exists():
        cmd = ["bench/bench_streaming.py"] + (["--tags", "1000", "--seconds", "15"] if quick else [])
        proc, got = _child_bench("streaming", cmd)
        modes = got.get("modes", [])
        streaming = {
            "command": ".venv/bin/python " + " ".join(cmd),
            "returncode": proc.returncode,
            "output": proc.stdout + (proc.stderr[-2000:] if proc.returncode else ""),
            "modes": modes,
        }
        # Today's design (runs) beside the lander and the lander at 10× the value rate, with the goals.
        print("\n".join(streaming_table.render(modes)) if modes else proc.stdout[-1500:], flush=True)
    scaleout = _scaleout(quick) if "scaleout" in only else None
    return {"figures": [f.as_json() for f in figures], "streaming": streaming, "scaleout": scaleout}


def _child_bench(name: str, cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A benchmark script in its own process (`cmd` after the interpreter), with its figures read back from the JSON
    file it writes (`--json`; empty when it wrote none)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        proc = subprocess.run(
            [PYTHON, *cmd, "--json", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=2700,
            check=False,
        )
        got = json.loads(out.read_text()) if out.exists() else {}
    print(f"[{name}: {time.perf_counter() - t0:.0f} s, exit {proc.returncode}]", flush=True)
    return proc, got


def _scaleout(quick: bool) -> dict[str, Any]:
    """Issue 15's scale-out benchmark (bench/bench_scaleout.py) in its own process: shard runs through the daemon on
    Postgres over one and two emulators; its table and where it stops scaling."""
    cmd = ["bench/bench_scaleout.py"] + (["--quick"] if quick else [])
    proc, got = _child_bench("scaleout", cmd)
    if got.get("rows"):
        print("\n".join(bench_scaleout.render(got["rows"])), flush=True)
        print(got["verdict"], flush=True)
    else:
        print(proc.stdout[-1500:] + proc.stderr[-3000:], flush=True)
    return {
        "command": ".venv/bin/python " + " ".join(cmd),
        "returncode": proc.returncode,
        **got,
    }


def _as_memory(fig: Figure) -> Figure:
    fig.scenario = "memory"
    return fig


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--quick", action="store_true", help="small sizes, 1 run each: a smoke run under 2 minutes"
    )
    ap.add_argument("--repeat", type=int, default=0, help="runs per figure (default 3, quick 1)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md and the plot")
    ap.add_argument("--out", default="", help="results JSON path (default bench/results/{full,quick}.json)")
    args = ap.parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    command = ".venv/bin/python bench/run_all.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    results = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command.strip(),
        "machine": machine(),
        "quick": args.quick,
        **run(args),
    }
    results["total_s"] = time.perf_counter() - t0
    out = (
        Path(args.out)
        if args.out
        else ROOT / "bench" / "results" / ("quick.json" if args.quick else "full.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {out}")
    print("\n".join(report.render_shapes(results["figures"])), flush=True)
    # A quick run is a smoke test: it never overwrites the published figures.
    if not args.quick and not args.no_docs:
        png = ROOT / "docs" / "img" / "bench.png"
        has_plot = report.plot(results, png)
        section = report.render(results, "img/bench.png" if has_plot else None)
        report.write_docs(ROOT / "docs" / "performance.md", section)
        print(f"wrote docs/performance.md{' and docs/img/bench.png' if has_plot else ''}")
    return results


if __name__ == "__main__":
    main()
