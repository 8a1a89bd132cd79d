"""Child process of the benchmark: one Dagster materialization (catalogue or a pi_timeseries window) into a lake.

Runs in its own process so its peak RSS (getrusage) is the Dagster run's alone; prints one JSON line with the figures.
Run: .venv/bin/python bench/dagster_run.py {catalogue|timeseries} --api URL --lake DIR [--start ISO --end ISO]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg
import httpx

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.timeseries import pi_timeseries

HOURLY_KEY = "%Y-%m-%d-%H:%M"
# The calls that fetch recorded values; the raw-fetch ceiling replays exactly these.
VALUE_PATHS = ("/streamsets/recorded", "/batch")


def log_value_requests(sink: IO[str]) -> None:
    """Append every value-fetching request the client sends to `sink` (JSON lines), for the ceiling replay.

    Patched at the httpx transport boundary so the asset and client run unmodified.
    """
    original = httpx.Client.send
    lock = threading.Lock()

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path.endswith(VALUE_PATHS):
            line = json.dumps(
                {
                    "method": request.method,
                    "url": str(request.url),
                    "content": request.content.decode("utf-8"),
                    "headers": {k: v for k, v in request.headers.items() if k.lower() != "content-length"},
                }
            )
            with lock:
                sink.write(line + "\n")
        return original(self, request, **kwargs)

    httpx.Client.send = send  # type: ignore[method-assign]


def peak_rss_mib() -> float:
    """Peak resident set of this process (VmHWM, KiB in /proc). Not getrusage's ru_maxrss: Linux carries the
    parent's peak across fork+exec into it, so a child of a large benchmark process would report the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM missing from /proc/self/status: peak RSS needs Linux")


def hour_keys(start: datetime, end: datetime) -> list[str]:
    keys, t = [], start
    while t < end:
        keys.append(t.strftime(HOURLY_KEY))
        t += timedelta(hours=1)
    return keys


def run(args: argparse.Namespace) -> dict[str, Any]:
    resources = {
        "pi": PIWebAPIResource(pi_web_api_url=args.api, tag_filter="*", max_concurrency=args.concurrency),
        "lake": LakeResource(root_uri=args.lake),
    }
    if args.what == "catalogue":
        t0 = time.perf_counter()
        result = dg.materialize([pi_points], resources=resources)
        return {"ok": result.success, "wall_s": time.perf_counter() - t0}
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    end = datetime.fromisoformat(args.end).astimezone(UTC)
    keys = hour_keys(start, end)
    # A range run is what BackfillPolicy.multi_run hands the asset: the whole window in one run, one commit.
    tags = (
        {}
        if len(keys) == 1
        else {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    )
    t0, c0 = time.perf_counter(), time.process_time()
    result = dg.materialize(
        [pi_timeseries],
        resources=resources,
        partition_key=keys[0] if len(keys) == 1 else None,
        tags=tags,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    return {
        "ok": result.success,
        "wall_s": wall,
        "cpu_s": cpu,
        "asset_s": float(md["duration_s"].value),
        "values": int(md["values"].value),
        "client_http_calls": int(md["http_calls"].value),
        "files_added": int(md["files_added"].value),
        "write_s": float(md["write_duration_s"].value),
        "tags": int(md["tags_requested"].value),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("what", choices=["catalogue", "timeseries"])
    ap.add_argument("--api", required=True)
    ap.add_argument("--lake", required=True)
    ap.add_argument("--start")
    ap.add_argument("--end")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--request-log", help="file to write the value-fetching requests to (JSON lines)")
    args = ap.parse_args()
    sink = open(args.request_log, "w") if args.request_log else None  # noqa: SIM115 - closed below
    try:
        if sink is not None:
            log_value_requests(sink)
        out = run(args)
    finally:
        if sink is not None:
            sink.close()
    out["peak_rss_mib"] = peak_rss_mib()
    out["rss_source"] = "VmHWM"
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
