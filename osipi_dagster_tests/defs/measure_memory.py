"""Peak RSS of pi_timeseries materializations (10,000 tags; 1 hour, then a 6-hour range run, then a 6-hour repair) to
show that memory does not grow with the window length. Not a pytest test: run it by hand, it prints one line per run.

Run: .venv/bin/python -m osipi_dagster_tests.defs.measure_memory [--tags 10000] [--hours 1,6]
Each materialization runs in its own child process, which reports its own ru_maxrss (peak resident set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from osipi_dagster_tests.emulator import PROJECT_ROOT, start_emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
KEY = "%Y-%m-%d-%H:%M"

CHILD = """
import json, resource, sys, time
import dagster as dg
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.names import REPAIR_TAG
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.pi.resources import PIWebAPIResource

api, lake, what, start, end, repair = sys.argv[1:7]
resources = {"pi": PIWebAPIResource(pi_web_api_url=api, tag_filter="*"), "lake": LakeResource(root_uri=lake)}
t0 = time.perf_counter()
if what == "catalogue":
    result = dg.materialize([pi_points], resources=resources)
    out = {}
else:
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    if repair == "1":
        tags[REPAIR_TAG] = "measure"
    if start == end:
        result = dg.materialize([pi_timeseries], resources=resources, partition_key=start,
                                tags={k: v for k, v in tags.items() if k == REPAIR_TAG})
    else:
        result = dg.materialize([pi_timeseries], resources=resources, tags=tags)
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    out = {"values": md["values"].value, "pages": md["pages"].value, "http_calls": md["http_calls"].value}
    if repair == "1":
        out["rows_unchanged"] = md["rows_unchanged"].value
out.update(ok=result.success, wall_s=round(time.perf_counter() - t0, 1),
           peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
print("RESULT " + json.dumps(out), flush=True)
"""


def child(api: str, lake: str, what: str, start: str = "", end: str = "", repair: bool = False) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, api, lake, what, start, end, "1" if repair else "0"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {what} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tags", type=int, default=10_000)
    ap.add_argument("--hours", default="1,6", help="window lengths to measure, comma-separated")
    ap.add_argument("--repair", action="store_true", help="also rerun the longest window as a repair")
    args = ap.parse_args()
    args_emu = ("--seed", "42", "--tags", str(args.tags), "--clock", f"frozen:{NOW.isoformat()}")
    with tempfile.TemporaryDirectory() as tmp, start_emulator(*args_emu, timeout=120) as emu:
        catalogue = str(Path(tmp) / "catalogue")
        print("catalogue", child(emu.api, catalogue, "catalogue"), flush=True)
        longest = ""
        for hours in (int(h) for h in args.hours.split(",")):
            lake = str(Path(tmp) / f"lake_{hours}h")
            subprocess.run(["cp", "-r", catalogue, lake], check=True)
            first = NOW - timedelta(hours=hours + 1)
            start, end = first.strftime(KEY), (first + timedelta(hours=hours - 1)).strftime(KEY)
            print(f"{args.tags} tags x {hours} h", child(emu.api, lake, "timeseries", start, end), flush=True)
            longest = (lake, start, end, hours)  # type: ignore[assignment]
        if args.repair and longest:
            lake, start, end, hours = longest  # type: ignore[misc]
            print(
                f"{args.tags} tags x {hours} h repair (nothing changed)",
                child(emu.api, lake, "timeseries", start, end, repair=True),
                flush=True,
            )


if __name__ == "__main__":
    main()
