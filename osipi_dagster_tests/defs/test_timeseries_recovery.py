"""pi_timeseries under failure: a run SIGKILLed mid-stream and rerun gives the same table as a clean run, a lost
Delta commit race is retried by re-running the extraction, and progress lines carry the planned page total.

Tables are read back with deltalake/polars and compared with a clean run of the same window from the same archive.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.defs.conftest import Model, make_resources, read_table, us
from osipi_dagster_tests.emulator import PROJECT_ROOT, Emulator

RANGE = ("2024-05-01-04:00", "2024-05-01-09:00")  # six hours, one run, one commit
RANGE_TAGS = {
    "dagster/asset_partition_range_start": RANGE[0],
    "dagster/asset_partition_range_end": RANGE[1],
}
BEFORE, AFTER = "2024-05-01-03:00", "2024-05-01-10:00"
RECORDED_CALLS = ("GET /streamsets/recorded", "POST /batch")

# The child: one range materialization of every tag, one request at a time, so a slow emulator makes it long.
CHILD = """
import sys
import dagster as dg
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.pi.resources import PIWebAPIResource

api, lake, start, end = sys.argv[1:5]
resources = {
    "pi": PIWebAPIResource(pi_web_api_url=api, tag_filter="*", max_concurrency=1),
    "lake": LakeResource(root_uri=lake),
}
tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
dg.materialize([pi_timeseries], resources=resources, tags=tags)
print("child finished the run: it was not killed in time", flush=True)
"""


def stable(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("ingested_at").sort("web_id", "timestamp", "ordinal")


def recorded_calls(emulator: Emulator) -> int:
    endpoints = httpx.get(f"{emulator.root}/metrics", timeout=5).json()["endpoints"]
    return sum(int(endpoints.get(name, {}).get("requests", 0)) for name in RECORDED_CALLS)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_run_rerun_gives_the_same_table_as_a_clean_run(
    emulator: Emulator,
    emulator_factory: Callable[..., Emulator],
    catalogue_lake: Path,
    tmp_path: Path,
    model: Model,
) -> None:
    # Same seed, tags and frozen clock as the shared emulator (so the same archive), but every call takes 250 ms.
    slow = emulator_factory(*DEFAULT_ARGS, "--faults", "latency:250ms")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    shutil.copytree(catalogue_lake, killed)
    shutil.copytree(catalogue_lake, clean)
    all_tags = {"tag_filter": "*"}
    for key in (BEFORE, AFTER):  # neighbours on both sides, in both lakes
        for lake in (killed, clean):
            assert dg.materialize(
                [pi_timeseries],
                resources=make_resources(emulator.api, lake, **all_tags),
                partition_key=key,
            ).success
    neighbours = stable(read_table(killed, "pi_timeseries"))
    version = DeltaTable(str(killed / "pi_timeseries")).version()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, slow.api, str(killed), *RANGE],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Mid-stream: at least two recorded-value calls answered (the run needs many more at 250 ms each).
        wait_for(
            lambda: recorded_calls(slow) >= 2 or child.poll() is not None, 60, "the child to fetch pages"
        )
        assert child.poll() is None, child.communicate()[0].decode()[-2000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # The kill came before the one commit: the table is exactly as before, neighbours included.
    assert DeltaTable(str(killed / "pi_timeseries")).version() == version
    assert stable(read_table(killed, "pi_timeseries")).equals(neighbours)

    rerun = dg.materialize(
        [pi_timeseries], resources=make_resources(slow.api, killed, **all_tags), tags=RANGE_TAGS
    )
    assert rerun.success
    reference = dg.materialize(
        [pi_timeseries], resources=make_resources(emulator.api, clean, **all_tags), tags=RANGE_TAGS
    )
    assert reference.success

    after_kill = read_table(killed, "pi_timeseries")
    assert stable(after_kill).equals(stable(read_table(clean, "pi_timeseries")))
    assert after_kill.select(pl.struct("web_id", "timestamp", "ordinal").is_unique().all()).item()
    start, end = datetime(2024, 5, 1, 4, tzinfo=UTC), datetime(2024, 5, 1, 10, tzinfo=UTC)
    in_range = after_kill.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))
    assert in_range.height == model.recorded("*", start, end).height > 100_000
    # Neighbours untouched: the rows outside the range are the ones landed before the kill, same ingestion time.
    outside = after_kill.filter((pl.col("timestamp") < start) | (pl.col("timestamp") >= end))
    assert outside.sort("web_id", "timestamp", "ordinal").equals(
        read_table(killed, "pi_timeseries")
        .filter((pl.col("timestamp") < start) | (pl.col("timestamp") >= end))
        .sort("web_id", "timestamp", "ordinal")
    )
    assert stable(outside).equals(neighbours)
    assert us(outside["timestamp"].min()) == us(datetime(2024, 5, 1, 3, tzinfo=UTC))


def test_lost_commit_race_is_retried_by_re_extracting(
    emulator: Emulator, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = make_resources(emulator.api, lake, tag_filter="*")  # every tag: several pages per hour
    # Hours 09 and 10 landed by one range run: one Parquet file holds both, so rewriting hour 10 while hour 09's
    # replace is in flight makes hour 09's commit conflict (delta-rs: "concurrent transaction ... new data").
    hours = ("2024-05-01-09:00", "2024-05-01-10:00")
    assert dg.materialize(
        [pi_timeseries],
        resources=resources,
        tags={"dagster/asset_partition_range_start": hours[0], "dagster/asset_partition_range_end": hours[1]},
    ).success
    before = stable(read_table(lake, "pi_timeseries"))
    ref = Lake(str(lake)).table("pi_timeseries")
    h10, h11 = datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC)
    original = PIWebAPIClient.iter_recorded
    extractions: list[int] = []

    def racing(self, *args, **kwargs) -> Iterator[pl.DataFrame]:
        extractions.append(1)
        for i, page in enumerate(original(self, *args, **kwargs)):
            if i == 1 and len(extractions) == 1:
                # Another writer commits hour 10 (same rows) while this run streams hour 09 (from the second page
                # on: the writer has opened the table by then).
                # In its own thread: this generator runs inside delta-rs's writer (a tokio runtime).
                def other_writer() -> None:
                    rows = ref.read(filters=(pl.col("timestamp") >= h10) & (pl.col("timestamp") < h11))
                    ref.replace_window(rows, column="timestamp", start=h10, end=h11, partition_by=["date"])

                with ThreadPoolExecutor(1) as pool:
                    pool.submit(other_writer).result(timeout=60)
            yield page

    monkeypatch.setattr(PIWebAPIClient, "iter_recorded", racing)
    result = dg.materialize([pi_timeseries], resources=resources, partition_key=hours[0])
    assert result.success
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    assert len(extractions) == 2 and md["write_attempts"].value == 2
    assert md["values"].value == before.filter(pl.col("timestamp") < h10).height
    assert stable(read_table(lake, "pi_timeseries")).equals(before)


def test_progress_lines_carry_the_planned_page_total(emulator: Emulator, lake: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [pi_timeseries],
            resources=make_resources(emulator.api, lake, tag_filter="*"),  # every tag: several pages
            partition_key="2024-05-01-09:00",
            instance=instance,
        )
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    planned = md["pages_planned"].value
    assert planned >= 2 and md["pages"].value == planned
    assert any(m.endswith(f": {planned} pages planned") for m in messages)
    final = [m for m in messages if f"pages {planned}/{planned}, rows {md['values'].value:,}" in m]
    assert len(final) == 1 and "landed" in final[0]
