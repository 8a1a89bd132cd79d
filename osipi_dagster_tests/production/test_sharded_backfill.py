"""Issue 15's done-when test: an hourly backfill of one connection with 4 tag shards through the real Dagster
daemon on Postgres (deploy/dagster.production.yaml).

The shard runs overlap in time (within the per-connection limit); the table equals an unsharded run of the same
hours row for row, read back by deltalake itself; two runs SIGKILLed in their commit (one while writing, one
right after its commit) are retried by Dagster's run retries to the same table; rerunning one hour × shard
changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from mock_pi.process import Emulator
from osipi_dagster.devtools.postgres import Postgres
from osipi_dagster_tests.streaming.helpers import ROOT, Processes, daemon_cmd, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SHARDS = int(os.environ.get("OSIPI_TEST_SHARDS", "4"))
HOURS = ["2024-05-01-09:00", "2024-05-01-10:00"]
# The cells killed mid-commit (hour, shard, point), each once; their run retries must land them. (Unsharded, for
# checking the harness alone with OSIPI_TEST_SHARDS=1: one run lands both hours.)
KILLS = (
    [("2024-05-01T09", "1", "in-write"), ("2024-05-01T10", "2", "after-commit")]
    if SHARDS > 1
    else [("2024-05-01T09", "-", "in-write")]
)
RERUN = "2024-05-01-10:00|3" if SHARDS > 1 else "2024-05-01-10:00"
CONNECTION_LIMIT = 4
TAGS = {"osipi/connection": "default", "osipi/pool": "pi_web_api"}
KEY = ["web_id", "timestamp", "ordinal"]
WILL_RETRY, PARTITION = "dagster/will_retry", "dagster/partition"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def cells() -> list[str]:
    """The backfill's partition keys: hour × shard ("<hour>|<shard>"), or the hours when unsharded."""
    return [f"{h}|{s}" for h in HOURS for s in range(SHARDS)] if SHARDS > 1 else list(HOURS)


def table(lake: Path) -> pl.DataFrame:
    """pi_timeseries as deltalake reads it, without the landing's own columns (ingested_at, shard), sorted."""
    frame = pl.from_arrow(DeltaTable(str(lake / "pi_timeseries")).to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.drop("ingested_at", "shard", strict=False).sort(KEY)


def backfill(env: dict[str, str], keys: list[str]) -> str:
    """Submit an asset backfill of pi_timeseries (the daemon queues one run per hour × shard); its id."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "osipi_dagster.devtools.backfill",
            "--asset",
            "pi/pi_timeseries",
            *("--partitions", ",".join(keys)),
            *("--tags", json.dumps(TAGS)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def covered(run: dg.DagsterRun, keys: list[str]) -> set[str]:
    """The partition keys a run lands: its partition, or its range (a backfill run of several partitions)."""
    if PARTITION in run.tags:
        return {run.tags[PARTITION]}
    first, last = run.tags.get(RANGE_START), run.tags.get(RANGE_END)
    return {k for k in keys if first is not None and last is not None and first <= k <= last}


def settled_runs(home: Path, backfill_id: str, keys: list[str]) -> list[dg.RunRecord] | None:
    """The backfill's run records (retries included) once every partition has succeeded and no run is queued,
    running, or failed with Dagster's retry decision pending or a retry not yet launched; None before."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = list(instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))
    runs = [r.dagster_run for r in records]
    done = set().union(*(covered(r, keys) for r in runs if r.status == dg.DagsterRunStatus.SUCCESS))
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    # The daemon tags a failed run dagster/will_retry once it has decided, and the retry's id once launched.
    given_up = [
        r.run_id for r in failed if r.tags.get(WILL_RETRY) == "false" and not covered(r, keys) <= done
    ]
    assert not given_up, f"runs failed and Dagster will not retry them: {given_up}"
    pending = [r for r in failed if WILL_RETRY not in r.tags or r.is_complete_and_waiting_to_retry]
    unfinished = [r for r in runs if not r.is_finished]
    return records if done >= set(keys) and not pending and not unfinished else None


def most_at_once(records: list[dg.RunRecord]) -> int:
    """The largest number of runs executing at one instant, from the runs' start and end records."""
    events = sorted(
        [(r.start_time, 1) for r in records if r.start_time]
        + [(r.end_time, -1) for r in records if r.end_time]
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.stop()


def test_sharded_backfill_through_the_daemon_on_postgres(
    emulator: Emulator,
    postgres: Postgres,
    production_home: Path,
    tmp_path: Path,
    procs: Processes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from osipi_dagster.definitions import defs as load_defs

    sharded, reference, markers = tmp_path / "sharded", tmp_path / "reference", tmp_path / "kills"
    markers.mkdir()
    monkeypatch.setenv("PI_WEB_API_URL", emulator.api)

    # The reference: the same hours landed unsharded, in this process (OSIPI_TAG_SHARDS unset here).
    # The definitions read the lake's URI when they load: load them once per lake.
    for lake in (sharded, reference):
        monkeypatch.setenv("OSIPI_LAKE_URI", str(lake))
        defs = load_defs()
        with dg.DagsterInstance.ephemeral() as instance:
            assert defs.resolve_job_def("pi_catalogue_job").execute_in_process(instance=instance).success
    span = {"dagster/asset_partition_range_start": HOURS[0], "dagster/asset_partition_range_end": HOURS[-1]}
    with dg.DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def("pi_timeseries_job")
        assert job.execute_in_process(instance=instance, tags=span).success
    assert not (sharded / "pi_timeseries").exists()
    expected = table(reference)
    assert expected.height > 0 and expected["web_id"].n_unique() > 100

    env = {
        **os.environ,
        **postgres.env(),
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(production_home),
        "OSIPI_LAKE_URI": str(sharded),
        "OSIPI_TAG_SHARDS": str(SHARDS),
        "OSIPI_TEST_KILL_AT": ";".join([str(markers), *("|".join(k) for k in KILLS)]),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "killhook"), str(ROOT)]),
    }
    log_path = tmp_path / "daemon.log"
    with log_path.open("ab") as log:
        procs.start(daemon_cmd(), env, stdout=log, stderr=subprocess.STDOUT)
    keys = cells()
    backfill_id = backfill(env, keys)

    def settled() -> list[dg.RunRecord] | None:
        return settled_runs(production_home, backfill_id, keys)

    try:
        records: list[dg.RunRecord] = wait_for(settled, 900, "every shard run to succeed", interval=2)  # type: ignore[assignment]
    except AssertionError as exc:
        raise AssertionError(f"{exc}; daemon log:\n{log_path.read_text(errors='replace')[-4000:]}") from None

    # Each kill happened once and cost one failed run, which Dagster's run retry replaced.
    assert sorted(p.name for p in markers.iterdir()) == sorted(f"{h}_{s}_{p}" for h, s, p in KILLS)
    statuses = [r.dagster_run.status.value for r in records]
    assert statuses.count("FAILURE") == len(KILLS)
    assert statuses.count("SUCCESS") == (len(keys) if SHARDS > 1 else 1)
    retries = [r for r in records if r.dagster_run.tags.get("dagster/parent_run_id")]
    assert len(retries) == len(KILLS)

    # The shard runs ran side by side, never more of this connection's than its limit.
    assert (2 if SHARDS > 1 else 1) <= most_at_once(records) <= CONNECTION_LIMIT

    # Row for row what the unsharded run landed, read back by deltalake.
    landed = table(sharded)
    assert landed.columns == expected.columns
    assert landed.equals(expected), "the sharded table differs from the unsharded one"

    # Rerunning one hour × shard commits again and changes nothing.
    before = DeltaTable(str(sharded / "pi_timeseries")).version()
    rerun_id = backfill(env, [RERUN])
    wait_for(lambda: settled_runs(production_home, rerun_id, [RERUN]), 300, "the rerun", interval=2)
    assert DeltaTable(str(sharded / "pi_timeseries")).version() > before
    assert table(sharded).equals(expected)
