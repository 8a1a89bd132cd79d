"""Channel listener against real emulators: kill -9 and restart, socket drops, stalls and heartbeats, then the
lake is compared with PI's recorded values over the covered span (no gap, no duplicate, no stray).

The emulator clock runs accelerated (or is advanced via /admin/clock); waits poll conditions with deadlines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.streaming import ChannelListener, Spool, SpoolReader, channel_groups, land_segments
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.streaming.helpers import (
    Proxy,
    assert_lake_equals_pi,
    lake_rows,
    recorded_between,
    wait_for,
)

START = "2024-05-01T12:00:00Z"
STREAMS = 40


def web_ids(api: str) -> list[str]:
    with PIWebAPIClient(ClientConfig(base_url=api)) as client:
        points = pl.concat(list(client.iter_points(client.data_servers()[0])))
    return points["web_id"].to_list()[:STREAMS]


def server_time(root: str) -> datetime:
    from osipi_dagster.lib.piwebapi import parse_time

    return parse_time(httpx.get(f"{root}/piwebapi/system/status").json()["ServerTime"])


def land_all(lake: Path, spool_dir: Path) -> int:
    reader = SpoolReader(spool_dir)
    names = [s.name for s in reader.ready()]
    return land_segments(Lake(str(lake)), reader, names).inserted if names else 0


def coverage(spool_dir: Path) -> datetime:
    """The time up to which every subscribed stream is durably covered."""
    return SpoolReader(spool_dir).watermarks()["covered_until"].min()


@pytest.fixture
def listener_cmd(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_kill_9_and_restart_lake_equals_pi(emulator_factory, tmp_path: Path, listener_cmd) -> None:
    emu = emulator_factory(
        "--tags", "200", "--clock", f"offset:{START}", "--clock-rate", "30", "--channel-poll-ms", "100"
    )
    ids = web_ids(emu.api)
    spool_dir, lake = tmp_path / "spool", tmp_path / "lake"
    cmd = [sys.executable, "-m", "osipi_dagster.lib.streaming", "listen", "--spool", str(spool_dir)]
    cmd += ["--pi-url", emu.api, "--segment-age", "0.3", "--channel-size", "15", "--log-level", "WARNING"]
    cmd += ["--health-address", "127.0.0.1:0"]
    for w in ids:
        cmd += ["--web-id", w]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    first = subprocess.Popen(cmd, env=env)
    listener_cmd.append(first)
    reader = SpoolReader(spool_dir)
    wait_for(lambda: len(reader.ready()) >= 3, 30, "three sealed segments from the first listener")
    landed_before_kill = land_all(lake, spool_dir)
    assert landed_before_kill > 0
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = server_time(emu.root)
    started = datetime.fromisoformat(reader.listener_state()["started_at"])
    # While it is down, PI keeps archiving (30 emulator seconds per second).
    wait_for(
        lambda: (server_time(emu.root) - killed_at).total_seconds() > 45, 10, "45 s of PI time while down"
    )

    second = subprocess.Popen(cmd, env=env)
    listener_cmd.append(second)
    wait_for(lambda: reader.listener_state().get("gap_values", 0) > 0, 30, "the restart's catch-up read")
    wait_for(lambda: coverage(spool_dir) > killed_at + (killed_at - started), 30, "coverage past the outage")
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    state = reader.listener_state()
    assert state["started_at"] == started.isoformat(), "a restart must keep the original start"
    land_all(lake, spool_dir)

    until = coverage(spool_dir)
    pi = recorded_between(emu.api, ids, started, until)
    assert pi.filter(pl.col("timestamp") > killed_at).height > 0
    assert_lake_equals_pi(lake_rows(lake), pi, started, until)
    stream_rows = lake_rows(lake)
    assert set(stream_rows["source"].unique()) == {"stream"}


def advance(emu: Emulator, interval: str) -> None:
    httpx.post(f"{emu.root}/admin/clock", json={"Advance": interval}).raise_for_status()


@contextlib.contextmanager
def running_listener(
    proxy: Proxy, spool_dir: Path, ids: list[str], *, max_url_bytes: int = 8000, **options: Any
) -> Iterator[tuple[ChannelListener, Spool]]:
    """A ChannelListener thread talking to PI through `proxy`; stopped, closed and checked error-free on exit."""
    stop = threading.Event()
    client = PIWebAPIClient(
        ClientConfig(base_url=proxy.api, max_retries=1, backoff_max_s=0.2, max_url_bytes=max_url_bytes)
    )
    spool = Spool(spool_dir, max_segment_age_s=0.2)
    tags = pl.DataFrame({"web_id": ids, "tag": None})
    listener = ChannelListener(client, spool, tags, heartbeat_rate=2, backoff_max_s=0.3, **options)
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield listener, spool
    finally:
        stop.set()
        thread.join(20)
        spool.close()
        client.close()
        proxy.close()
    assert listener.error is None


def test_socket_drops_stalls_and_heartbeats(emulator_factory, tmp_path: Path) -> None:
    emu = emulator_factory(
        "--tags", "200", "--clock", f"frozen:{START}", "--channel-poll-ms", "50", "--admin"
    )
    ids = web_ids(emu.api)
    proxy = Proxy(emu.port)
    spool_dir, lake = tmp_path / "spool", tmp_path / "lake"
    with running_listener(proxy, spool_dir, ids, channel_size=20, silence_timeout_s=1.0) as (listener, spool):
        # Frozen clock: no value changes, so the server sends heartbeats and the connection stays up.
        wait_for(
            lambda: listener.stats.connects == 2 and listener.stats.heartbeats >= 6,
            15,
            "heartbeats on both channels",
        )
        assert listener.stats.reconnects == 0
        started = datetime.fromisoformat(str(listener.stats.started_at))
        advance(emu, "2m")
        wait_for(lambda: listener.stats.values > 0, 15, "channel values after the clock moved")

        # Drop: cut every socket and refuse reconnects while PI archives two more minutes.
        proxy.refuse = True
        proxy.cut()
        wait_for(lambda: listener.stats.reconnects >= 2, 15, "both channels noticing the drop")
        advance(emu, "2m")
        proxy.refuse = False
        wait_for(lambda: listener.stats.gap_values > 0, 15, "the catch-up read after the drop")

        # Stall: sockets stay open but nothing flows; only the silence timeout can tell. Both channels must be back
        # and past their catch-up read first (it goes through the proxy too), or a stalled handshake or read would
        # fail on its own timeout instead. The first connect read nothing (frozen clock), so 2 reads = both.
        wait_for(
            lambda: listener.stats.connects >= 4 and listener.stats.gap_reads >= 2,
            15,
            "both channels reconnected and caught up after the drop",
        )
        proxy.stall = True
        advance(emu, "1m")
        wait_for(lambda: listener.stats.silence_timeouts >= 2, 15, "silence timeouts on both channels")
        proxy.stall = False
        proxy.cut()
        target = server_time(emu.root)
        wait_for(lambda: min(spool.covered()[w] for w in ids) >= target, 15, "coverage up to PI's now")
    land_all(lake, spool_dir)
    until = coverage(spool_dir)
    pi = recorded_between(emu.api, ids, started, until)
    assert pi.height > 100
    assert_lake_equals_pi(lake_rows(lake), pi, started, until)


@pytest.mark.parametrize("allowance_s", [60.0, 0.0], ids=["allowance-60s", "no-allowance"])
def test_late_value_inserted_during_outage_is_landed(
    emulator_factory, tmp_path: Path, allowance_s: float
) -> None:
    """A buffered interface delivers a value older than the last one received while the listener is cut off: the
    reconnect re-reads the allowance before each stream's coverage, so the lake equals PI. Without an allowance the
    same value is lost, which shows the test can see the difference."""
    emu = emulator_factory(
        "--tags", "200", "--clock", f"frozen:{START}", "--channel-poll-ms", "50", "--admin"
    )
    ids = web_ids(emu.api)
    proxy = Proxy(emu.port)
    spool_dir, lake = tmp_path / "spool", tmp_path / "lake"
    # A small URL limit splits the 40 streams into several channels (as a real IIS limit would).
    with running_listener(
        proxy, spool_dir, ids, max_url_bytes=1200, silence_timeout_s=2.0, late_allowance_s=allowance_s
    ) as (listener, spool):
        channels = len(listener.channels)
        assert channels >= 3
        wait_for(lambda: listener.stats.connects == channels, 15, "every channel connected")
        started = datetime.fromisoformat(str(listener.stats.started_at))
        advance(emu, "2m")
        # Coverage is what each stream really received: wait until some stream got values 30 s past the start.
        wait_for(
            lambda: any((t - started).total_seconds() > 30 for t in spool.covered().values()),
            15,
            "channel values 30 s past the start",
        )
        proxy.refuse = True
        proxy.cut()
        wait_for(lambda: listener.stats.reconnects >= channels, 15, "every channel noticing the drop")
        web_id, last = max(spool.covered().items(), key=lambda kv: kv[1])
        late_ts = last - timedelta(
            seconds=20, microseconds=123_456
        )  # older than received, inside the allowance
        httpx.post(
            f"{emu.root}/admin/streams/{web_id}/insert",
            json=[{"Timestamp": late_ts.isoformat().replace("+00:00", "Z"), "Value": 12345.5}],
        ).raise_for_status()
        advance(emu, "1m")
        proxy.refuse = False
        target = server_time(emu.root)
        wait_for(lambda: min(spool.covered()[w] for w in ids) >= target, 20, "coverage up to PI's now")
    land_all(lake, spool_dir)
    until = coverage(spool_dir)
    pi = recorded_between(emu.api, ids, started, until)
    assert pi.filter((pl.col("web_id") == web_id) & (pl.col("timestamp") == late_ts))["value"].to_list() == [
        12345.5
    ]
    got = lake_rows(lake)
    landed_late = got.filter((pl.col("web_id") == web_id) & (pl.col("timestamp") == late_ts))
    if allowance_s:
        assert_lake_equals_pi(got, pi, started, until)
        assert landed_late["value"].to_list() == [12345.5]
    else:
        assert landed_late.height == 0
        missing = pi.join(got, on=["web_id", "timestamp", "ordinal"], how="anti")
        assert missing.select("web_id", "timestamp").rows() == [(web_id, late_ts)]


def test_channels_are_split_by_the_url_limit() -> None:
    config = ClientConfig(base_url="http://127.0.0.1:9/piwebapi", max_url_bytes=1000)
    ids = [f"F1DPw{i:04d}AAAAB%2Bslash/{'x' * (i % 7)}" for i in range(45)]
    groups = channel_groups(config, ids, heartbeat_rate=5)
    assert [w for g in groups for w in g] == ids and len(groups) > 1

    def url_bytes(group: list[str]) -> int:
        return len(ChannelStream(config, group, heartbeat_rate=5).url(False).encode())

    for i, group in enumerate(groups):
        assert url_bytes(group) <= 1000
        if i + 1 < len(groups):  # greedy: one more stream would not have fitted
            assert url_bytes([*group, groups[i + 1][0]]) > 1000
    capped = channel_groups(config, ids, heartbeat_rate=5, max_streams=4)
    assert max(len(g) for g in capped) == 4 and [w for g in capped for w in g] == ids
    with pytest.raises(ValueError, match="over max_url_bytes=1000"):
        channel_groups(config, ["x" * 1000])
