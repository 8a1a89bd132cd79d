"""Benchmark: the `osipi` Spark source with 1, 2 and 4 executors (local[1], local[2], local[4]) against the Dagster
path (pi_timeseries into Delta), same emulator, same window, figures printed side by side.

Each Spark figure runs in a child process (one SparkSession per master); the session's start-up is reported apart.
Per run: `read` = the source alone (Spark's noop sink forces every row through), `read+write` = recorded rows into a
Delta table (overwrite). The Dagster figure is bench/dagster_run.py's range run (read + one Delta commit). The rows
Spark wrote are counted with polars' Delta reader and must equal the Dagster run's values.
Run: .venv/bin/python bench/bench_spark.py [--tags 1000,10000] [--hours 1] [--executors 1,2,4] [--latency 0,20]
     [--repeat 3]   (needs the `spark` extra and the jars `make venv` fetches into jars/spark/)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, emulator, emulator_cmd, machine, run_child

JARS = ROOT / "jars" / "spark"
END = datetime(2024, 5, 1, 11, tzinfo=UTC)  # the emulator's clock is frozen at 12:00; whole hours before it


def window(hours: int) -> tuple[datetime, datetime]:
    return END - timedelta(hours=hours), END


# ---------------------------------------------------------------------------------------------------------------
# Child: one SparkSession, `repeat` reads and writes


def spark_session(master: str, scratch: Path) -> Any:
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the planner's Python worker is started with this
    from pyspark.sql import SparkSession

    jars = sorted(JARS.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        raise SystemExit(f"no Delta jars in {JARS}: run `make venv`")
    builder = SparkSession.builder.master(master).appName("osipi-bench")
    conf = {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.local.dir": str(scratch / "local"),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def child(args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    from osipi_dagster.spark import register

    scratch = Path(args.scratch)
    t0 = time.perf_counter()
    spark = spark_session(args.master, scratch)
    register(spark)
    session_s = time.perf_counter() - t0
    options = {"pi_web_api_url": args.api, "tag_filter": "*", "start": args.start, "end": args.end}

    def frame(**override: str) -> Any:
        reader = spark.read.format("osipi")
        for key, value in {**options, **override}.items():
            reader = reader.option(key, value)
        return reader.load()

    # The first queries of a session start the Python workers, import the client and load Delta's classes:
    # measured apart, on the window's last minute.
    t = time.perf_counter()
    minute_before = (datetime.fromisoformat(args.end) - timedelta(minutes=1)).isoformat()
    frame(start=minute_before).write.format("noop").mode("overwrite").save()
    frame(start=minute_before).write.format("delta").mode("overwrite").save(str(scratch / "warmup"))
    warmup_s = time.perf_counter() - t
    runs = []
    for i in range(args.repeat):
        df = frame()
        partitions = df.rdd.getNumPartitions()
        t = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        read_s = time.perf_counter() - t
        path = scratch / f"table{i}"
        t = time.perf_counter()
        frame().write.format("delta").mode("overwrite").save(str(path))
        write_s = time.perf_counter() - t
        rows = int(pl.scan_delta(str(path)).select(pl.len()).collect().item())
        runs.append({"read_s": read_s, "read_write_s": write_s, "rows": rows, "partitions": partitions})
        shutil.rmtree(path, ignore_errors=True)
    spark.stop()
    return {"ok": True, "master": args.master, "session_s": session_s, "warmup_s": warmup_s, "runs": runs}


# ---------------------------------------------------------------------------------------------------------------
# Parent: emulator, Dagster reference, one child per master


def dagster_runs(api: str, work: Path, start: datetime, end: datetime, repeat: int) -> list[dict[str, Any]]:
    base = work / "catalogue"
    run_child(["bench/dagster_run.py", "catalogue", "--api", api, "--lake", str(base)], 3600)
    runs = []
    for i in range(repeat):
        lake = work / f"lake{i}"
        shutil.copytree(base, lake)
        args = ["bench/dagster_run.py", "timeseries", "--api", api, "--lake", str(lake)]
        runs.append(run_child([*args, "--start", start.isoformat(), "--end", end.isoformat()], 3600))
        shutil.rmtree(lake)
    return runs


def measure(tags: int, hours: int, latency: int, executors: list[int], repeat: int) -> dict[str, Any]:
    start, end = window(hours)
    work = Path(tempfile.mkdtemp(prefix="osipi_bench_spark_"))
    try:
        with emulator(tags, latency) as emu:
            dagster = dagster_runs(emu.api, work, start, end, repeat)
            values = dagster[0]["values"]
            spark = {}
            for n in executors:
                scratch = work / f"spark{n}"
                scratch.mkdir()
                out = run_child(
                    ["bench/bench_spark.py", "--child", "--master", f"local[{n}]", "--api", emu.api,
                     "--start", start.isoformat(), "--end", end.isoformat(), "--repeat", str(repeat),
                     "--scratch", str(scratch)],
                    3600,
                )  # fmt: skip
                bad = [r["rows"] for r in out["runs"] if r["rows"] != values]
                if bad:
                    raise RuntimeError(f"Spark wrote {bad} rows, the Dagster run landed {values}")
                spark[n] = out
        return {
            "tags": tags,
            "hours": hours,
            "latency_ms": latency,
            "values": values,
            "emulator": emulator_cmd(tags, latency),
            "dagster": dagster,
            "spark": spark,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def med(values: list[float]) -> float:
    return statistics.median(values)


def table(results: list[dict[str, Any]]) -> str:
    """Markdown, one row per (window, latency): Dagster, then each executor count (median of the runs)."""
    executors = sorted({int(n) for r in results for n in r["spark"]})
    head = ["window", "latency", "values", "Dagster (read+write)"]
    head += [f"Spark local[{n}] read / read+write" for n in executors]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        d = med([x["wall_s"] for x in r["dagster"]])
        cells = [
            f"{r['tags']:,} tags × {r['hours']} h",
            f"{r['latency_ms']} ms",
            f"{r['values']:,}",
            f"{d:.2f} s",
        ]
        for n in executors:
            runs = r["spark"][n]["runs"] if n in r["spark"] else r["spark"][str(n)]["runs"]
            rd, rw = med([x["read_s"] for x in runs]), med([x["read_write_s"] for x in runs])
            cells.append(f"{rd:.2f} s / {rw:.2f} s ({runs[0]['partitions']} part.)")
        lines.append("| " + " | ".join(cells) + " |")
    sessions = {n: med([r["spark"][n]["session_s"] for r in results if n in r["spark"]]) for n in executors}
    lines.append("")
    warmups = {n: med([r["spark"][n]["warmup_s"] for r in results if n in r["spark"]]) for n in executors}
    lines.append(
        "Not in the figures: Spark session start-up "
        + ", ".join(f"local[{n}] {s:.1f} s" for n, s in sessions.items())
        + "; first queries of a session (one minute, noop and Delta) "
        + ", ".join(f"local[{n}] {s:.1f} s" for n, s in warmups.items())
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", default="1000,10000")
    ap.add_argument("--hours", type=int, default=1)
    ap.add_argument("--executors", default="1,2,4")
    ap.add_argument("--latency", default="0,20", help="emulator latency per call, ms (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here (default bench/results/spark-<time>.json)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--master", help=argparse.SUPPRESS)
    ap.add_argument("--api", help=argparse.SUPPRESS)
    ap.add_argument("--start", help=argparse.SUPPRESS)
    ap.add_argument("--end", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return
    executors = [int(n) for n in args.executors.split(",")]
    results = []
    for tags in (int(t) for t in args.tags.split(",")):
        for latency in (int(x) for x in args.latency.split(",")):
            t0 = time.perf_counter()
            results.append(measure(tags, args.hours, latency, executors, args.repeat))
            print(
                f"[{tags} tags × {args.hours} h, {latency} ms: {time.perf_counter() - t0:.0f} s]", flush=True
            )
            print(table(results[-1:]), flush=True)
    print()
    print(table(results))
    out = (
        Path(args.json)
        if args.json
        else ROOT / "bench" / "results" / f"spark-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "results": results}, indent=1, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
