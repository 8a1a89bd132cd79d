"""Crash safety of the chosen design, with real processes: SIGKILL of the lander at its two critical points, and
SIGKILL of the listener, the lander and the Dagster daemon while values stream. Afterwards the lake equals PI's
recorded values (nothing lost, nothing doubled) and every lander commit is reported exactly once, with no run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from osipi_dagster.defs.streaming.assets import STREAM_KEY
from osipi_dagster.defs.streaming.reporting import UNIQUE_KEYS_CHECK
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import Spool, SpoolReader
from osipi_dagster_tests.streaming.helpers import (
    ROOT,
    Processes,
    assert_lake_equals_pi,
    daemon_cmd,
    dagster_env,
    lake_rows,
    lander_commits,
    recorded_between,
    start_sensor,
    stream_cmd,
    wait_for,
)
from osipi_dagster_tests.streaming.test_defs import spooled
from osipi_dagster_tests.streaming.test_listener import START, coverage, server_time, web_ids

HOUR = datetime(2024, 5, 1, 10, tzinfo=UTC)

# Lands segment 1, then dies by SIGKILL inside the landing of segment 2: in the merge (nothing committed yet) or
# right after its commit, before the segments move to landed/.
KILLED_LANDER = """
import os, signal, sys
from deltalake import DeltaTable
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.streaming import SpoolReader
from osipi_dagster.lib.streaming.lander import Lander

spool, lake, point = sys.argv[1:]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
with Lander(Lake(lake), SpoolReader(spool), max_batch_bytes=1) as lander:
    lander.land_once()
    if point == "in-merge":
        DeltaTable.merge = die
    else:
        SpoolReader.mark_landed = die
    lander.land_once()
"""


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.stop()


@pytest.mark.parametrize("point", ["in-merge", "after-commit"])
def test_lander_killed_mid_landing_lands_everything_once(
    emulator, tmp_path: Path, procs: Processes, point: str
) -> None:
    spool_dir, lake = tmp_path / "spool", tmp_path / "lake"
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        points = pl.concat(list(client.iter_points(client.data_servers()[0])))
        ids = points.filter(pl.col("point_type") == "Float32")["web_id"].to_list()[:20]
        pi = client.recorded(ids, HOUR, HOUR + timedelta(hours=1))
    with Spool(spool_dir, max_segment_age_s=3600) as spool:
        for part in (pi.head(pi.height // 2), pi.tail(pi.height - pi.height // 2)):
            spool.append(spooled(part))
            spool.seal()

    killed = subprocess.run([sys.executable, "-c", KILLED_LANDER, str(spool_dir), str(lake), point], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    reader = SpoolReader(spool_dir)
    assert [s.seq for s in reader.ready()] == [2], "segment 2 is still waiting after the kill"
    assert len(lander_commits(lake)) == (2 if point == "after-commit" else 1)

    # A fresh lander process takes over: segment 2 lands (again, for after-commit: nothing inserted, no commit).
    lander = procs.start(stream_cmd("land", spool_dir, "--lake", str(lake)), {**os.environ})
    wait_for(lambda: not reader.ready(), 60, "the restarted lander to land segment 2")
    lander.send_signal(signal.SIGTERM)
    assert lander.wait(30) == 0
    commits = lander_commits(lake)
    assert len(commits) == 2, "one commit per segment: the replay after the commit committed nothing"
    assert sorted(r["values"] for r in commits.values()) == sorted(
        [pi.height // 2, pi.height - pi.height // 2]
    )
    assert_lake_equals_pi(lake_rows(lake), pi, HOUR - timedelta(microseconds=1), HOUR + timedelta(hours=1))


def reported_versions(home: Path) -> list[int]:
    """Delta versions of the stream asset's runless materializations (the report sensor's), oldest first."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(STREAM_KEY, limit=10_000, ascending=True).records
        return [int(r.asset_materialization.metadata["delta_version"].value) for r in records if not r.run_id]  # type: ignore[union-attr]


def test_kill_9_listener_lander_and_daemon_lake_equals_pi_reported_once(
    emulator_factory, tmp_path: Path, procs: Processes
) -> None:
    emu = emulator_factory(
        "--tags", "200", "--clock", f"offset:{START}", "--clock-rate", "30", "--channel-poll-ms", "100"
    )
    ids = web_ids(emu.api)
    spool_dir, lake, home = tmp_path / "spool", tmp_path / "lake", tmp_path / "dagster_home"
    env = dagster_env(
        home, PI_WEB_API_URL=emu.api, OSIPI_LAKE_URI=str(lake), OSIPI_STREAM_SPOOL=str(spool_dir)
    )
    listen = stream_cmd("listen", spool_dir, "--segment-age", "0.3", "--channel-size", "15")
    for w in ids:
        listen += ["--web-id", w]
    land = stream_cmd("land", spool_dir)
    reader = SpoolReader(spool_dir)

    listener = procs.start(listen, env)
    lander = procs.start(land, env)
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - both daemons write to it until the test ends
    # The sensor is turned on before the daemon starts: both would otherwise create the new instance's SQLite
    # storage at once, and the loser's schema migration fails (UNIQUE constraint on alembic_version).
    start_sensor("pi_stream_report_sensor", env)
    daemon = procs.start(daemon_cmd(), env, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: len(lander_commits(lake)) >= 3, 60, "three landings")
    try:
        wait_for(lambda: reported_versions(home), 240, "the report sensor's first materializations")
    except AssertionError as exc:
        tail = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{exc}; daemon log:\n{tail}") from None

    # The listener dies; PI archives on (30 PI seconds per second); the restart reads the gap from the archive.
    started = datetime.fromisoformat(reader.listener_state()["started_at"])
    procs.kill9(listener)
    killed_at = server_time(emu.root)
    wait_for(
        lambda: (server_time(emu.root) - killed_at).total_seconds() > 45, 10, "45 s of PI time while down"
    )
    listener = procs.start(listen, env)
    wait_for(lambda: reader.listener_state().get("gap_values", 0) > 0, 30, "the restart's catch-up read")

    # The lander dies while it lands continuously; segments wait in ready/ until its restart.
    commits_before = len(lander_commits(lake))
    procs.kill9(lander)
    wait_for(lambda: len(reader.ready()) >= 3, 30, "segments waiting for the lander")
    lander = procs.start(land, env)
    wait_for(
        lambda: len(lander_commits(lake)) > commits_before + 2, 60, "landings after the lander's restart"
    )

    # The daemon (and its code server) die; landings go on; the restarted daemon reports what it missed.
    procs.kill9(daemon)
    commits_before = len(lander_commits(lake))
    wait_for(lambda: len(lander_commits(lake)) > commits_before + 2, 60, "landings while the daemon is down")
    daemon = procs.start(daemon_cmd(), env, stdout=log, stderr=subprocess.STDOUT)

    listener.send_signal(signal.SIGTERM)
    assert listener.wait(30) == 0
    wait_for(lambda: not reader.ready(), 60, "the lander to land every sealed segment")
    final = max(lander_commits(lake))
    wait_for(lambda: max(reported_versions(home), default=-1) >= final, 240, "reports up to the last landing")
    lander.send_signal(signal.SIGTERM)
    assert lander.wait(30) == 0

    until = coverage(spool_dir)
    pi = recorded_between(emu.api, ids, started, until)
    assert pi.filter(pl.col("timestamp") > killed_at).height > 0
    assert_lake_equals_pi(lake_rows(lake), pi, started, until)

    reported = reported_versions(home)
    assert len(reported) == len(set(reported)), "a landing reported twice"
    assert reported == sorted(lander_commits(lake)), "every lander commit reported, in order"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # Other sensors of the code location may launch their own runs (freshness checks); none lands streams.
        runs = [r.dagster_run for r in instance.get_run_records()]
        assert not [r for r in runs if STREAM_KEY in (r.asset_selection or ()) or "stream" in r.job_name], (
            "no run per landing: landings are reported, not run"
        )
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(STREAM_KEY, UNIQUE_KEYS_CHECK), limit=1000
        )
        assert checks and all(c.evaluation.passed for c in checks)  # type: ignore[union-attr]
    health = (spool_dir / "land.address").read_text()
    with pytest.raises(httpx.ConnectError):  # the lander stopped, and with it its endpoint
        httpx.get(f"http://{health}/livez")
