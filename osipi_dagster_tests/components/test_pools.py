"""Pools cap each site separately, and a slow or failing site leaves the others on time.

Three PIConnections (pool_limit 1 each, applied to the instance by `apply_pools`) against three emulators in one
Dagster instance (a temporary DAGSTER_HOME); five runs of their hourly jobs execute at once, each in its own process
(in-process executor: it claims pool slots from the instance like every executor; Dagster's in-process execution is
not thread-safe, so processes, as a run launcher would start them). The slow site's PI sits behind a proxy that holds
its traffic until the fast site is done; the broken site's emulator answers 502/503 to everything. Asserted from the
instance's runs and event log, not from sleeps:
(a) no two steps of one pool ever ran at once, and the slow site's second run was blocked by its pool;
(b) the fast site's runs finished while the slow site's runs were still in flight (one in PI, one blocked);
(c) the broken site's run failed on PI's 5xx, and only it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import pytest

from osipi_dagster.cli.pools import SET, UNCHANGED, apply_pools, connection_pools
from osipi_dagster.components.pi_connection import PIConnection
from osipi_dagster_tests.emulator import PROJECT_ROOT, Emulator
from osipi_dagster_tests.streaming.helpers import Proxy, wait_for

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
HOURS = ("2024-05-01-10:00", "2024-05-01-11:00")
SITES = {"fast": 7, "slow": 99, "broken": 5}
ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# One run of a connection's hourly job, in a process of its own, on the instance at $DAGSTER_HOME.
RUN_ONE = """
import json, sys, warnings
warnings.simplefilter("ignore")
import dagster as dg
from osipi_dagster.components.pi_connection import PIConnection
name, attrs, hour = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
job = PIConnection.from_attributes(name, attrs).build_defs(None).resolve_job_def(f"{name}__pi_timeseries_job")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, partition_key=hour, raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


def set_faults(emu: Emulator, profile: str) -> None:
    done = httpx.post(f"{emu.root}/admin/faults", json={"profile": profile}, timeout=10)
    assert done.status_code == 200, done.text


def step_intervals(
    instance: dg.DagsterInstance, run_ids: list[str], step: str
) -> list[tuple[float, float, str]]:
    """(start, end, run) of step `step` in these runs, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    out = []
    for run_id in run_ids:
        starts: dict[str, float] = {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or record.step_key != step:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[record.step_key] = record.timestamp
            elif event.event_type in ENDS:
                out.append((starts.pop(record.step_key), record.timestamp, run_id))
        assert not starts, f"steps of {run_id} that started and never ended: {starts}"
    return sorted(out)


def blocked_messages(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    return [
        r.user_message
        for run_id in run_ids
        for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if "blocked by limit for pool" in r.user_message
    ]


def site_runs(instance: dg.DagsterInstance, name: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name=f"{name}__pi_timeseries_job")))


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    """The proxies a test puts in front of emulators, closed at teardown."""
    started: list[Proxy] = []
    yield started
    for p in started:
        p.close()


def test_pools_cap_each_site_and_a_slow_or_failing_site_leaves_the_others_on_time(
    emulator_factory: Callable[..., Emulator], proxies: list[Proxy], tmp_path: Path
) -> None:
    emulators, attributes = {}, {}
    for name, seed in SITES.items():
        emu = emulator_factory(
            "--seed", str(seed), "--tags", "120", "--clock", f"frozen:{NOW.isoformat()}", "--admin"
        )
        emulators[name] = emu
        attributes[name] = {
            "pi_web_api_url": emu.api,
            "tag_filter": "U1*-TI*",
            "lake_uri": str(tmp_path / "lake"),
            "start_date": "2024-04-01",
            "pool_limit": 1,
            "max_retries": 0,  # the broken site fails on the first 5xx instead of retrying for its budget
        }
    gate = Proxy(emulators["slow"].port)
    proxies.append(gate)
    attributes["slow"] |= {
        "pi_web_api_url": gate.api,
        "timeout_s": 300,
    }  # held requests wait, they do not time out
    conns = {name: PIConnection.from_attributes(name, attrs) for name, attrs in attributes.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = dg.Definitions.merge(*(conn.build_defs(None) for conn in conns.values()))  # type: ignore[arg-type]
    pools = {name: f"pi_web_api_{name}" for name in SITES}
    assert connection_pools(defs) == sorted((name, pools[name], 1) for name in SITES)

    home = tmp_path / "dagster_home"
    home.mkdir()
    # As the project's dagster.yaml: pools limit steps (granularity op), across runs.
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    granularity: op\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # The limits are the instance's: a dry run sets nothing, apply sets each pool, a second apply changes nothing.
        assert {s.action for s in apply_pools(instance, defs, dry_run=True)} == {SET}
        assert not instance.event_log_storage.get_pool_limits()
        applied = {(s.pool, s.limit, s.action) for s in apply_pools(instance, defs)}
        assert applied == {(p, 1, SET) for p in pools.values()}
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
        assert limits == dict.fromkeys(pools.values(), 1)
        assert {s.action for s in apply_pools(instance, defs)} == {UNCHANGED}

        # Each site's catalogue first (the hourly runs read it), before the slow and broken sites turn bad.
        for name in SITES:
            done = dg.materialize(
                [defs.resolve_assets_def(dg.AssetKey([name, "pi_points"]))], instance=instance
            )
            assert done.success
        gate.stall = True
        set_faults(emulators["broken"], "flaky:1")

        env = {**os.environ, "DAGSTER_HOME": str(home)}
        procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        try:
            for name, hour in (
                [("slow", h) for h in HOURS] + [("fast", h) for h in HOURS] + [("broken", HOURS[0])]
            ):
                cmd = [sys.executable, "-c", RUN_ONE, name, json.dumps(attributes[name]), hour]
                procs[name, hour] = subprocess.Popen(
                    cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL
                )
            # The slow site: one step in PI (held by the proxy), the other run blocked by the pool.
            wait_for(lambda: blocked_messages(instance, [r.run_id for r in site_runs(instance, "slow")]), 180,
                     "a slow-site step blocked by its pool")  # fmt: skip
            assert [procs["fast", h].wait(300) for h in HOURS] == [0, 0]
            assert procs["broken", HOURS[0]].wait(300) == 1
            # (b) The fast site is done; the slow site's two runs are still in flight.
            slow_runs = site_runs(instance, "slow")
            assert len(slow_runs) == 2 and not [r.run_id for r in slow_runs if r.status in FINISHED]
            gate.stall = False
            assert [procs["slow", h].wait(300) for h in HOURS] == [0, 0]
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait(30)

        runs = {name: [r.run_id for r in site_runs(instance, name)] for name in SITES}
        # (a) Within each pool, steps never overlap (a step starts only after the previous one of its pool ended).
        # The PI step is the pool's; the runs' check steps (schema drift, freshness) read only the event log.
        steps = {name: f"{name}__pi_timeseries" for name in SITES}
        for name, run_ids in runs.items():
            intervals = step_intervals(instance, run_ids, steps[name])
            assert len(intervals) == len(run_ids), (name, intervals)
            for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
                assert start >= end, f"{name}: {second} started before {first} ended"
        assert any(pools["slow"] in m for m in blocked_messages(instance, runs["slow"]))
        # The fast site's runs ended before the slow site's last step did.
        fast_end = max(end for _, end, _ in step_intervals(instance, runs["fast"], steps["fast"]))
        assert fast_end < max(end for _, end, _ in step_intervals(instance, runs["slow"], steps["slow"]))
        # (c) Only the broken site's run failed, on PI's 5xx.
        statuses = {name: {r.status for r in site_runs(instance, name)} for name in SITES}
        assert statuses == {
            "fast": {dg.DagsterRunStatus.SUCCESS},
            "slow": {dg.DagsterRunStatus.SUCCESS},
            "broken": {dg.DagsterRunStatus.FAILURE},
        }
        [failure] = instance.all_logs(runs["broken"][0], of_type=dg.DagsterEventType.STEP_FAILURE)
        error = failure.dagster_event.step_failure_data.error  # type: ignore[union-attr]
        text = str(error.message) + (str(error.cause.message) if error.cause else "")
        assert re.search(r"\b50[23]\b", text), text
