"""The listener's and lander's health endpoint over real HTTP: /livez, /readyz and /metrics parsed with
prometheus_client's own text parser; figures compared with what the spool and the lake really hold.

A listener thread talks to a frozen-clock emulator through a loopback proxy (drops are real socket cuts).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import ChannelListener, Spool, SpoolReader
from osipi_dagster.lib.streaming.health import HealthServer, StreamHealth, parse_address
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster.lib.streaming.spool import read_segment_file
from osipi_dagster_tests.streaming.helpers import Processes, Proxy, lake_rows, stream_cmd, wait_for
from osipi_dagster_tests.streaming.test_listener import START, advance, web_ids


def metrics(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it as Prometheus does: (sample name, labels) → value."""
    response = httpx.get(f"http://{address}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str) -> float:
    return samples[(f"osipi_stream_{name}", ())]


@pytest.fixture
def streaming(
    emulator_factory, tmp_path: Path
) -> Iterator[tuple[ChannelListener, Lander, str, Proxy, object]]:
    emu = emulator_factory(
        "--tags", "200", "--clock", f"frozen:{START}", "--channel-poll-ms", "50", "--admin"
    )
    ids = web_ids(emu.api)
    proxy = Proxy(emu.port)
    client = PIWebAPIClient(ClientConfig(base_url=proxy.api, max_retries=1, backoff_max_s=0.2))
    spool = Spool(tmp_path / "spool", max_segment_age_s=0.2)
    listener = ChannelListener(
        client,
        spool,
        pl.DataFrame({"web_id": ids, "tag": None}),
        channel_size=20,
        heartbeat_rate=2,
        backoff_max_s=0.3,
    )
    lander = Lander(Lake(str(tmp_path / "lake")), SpoolReader(tmp_path / "spool"))
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    server = HealthServer(StreamHealth(spool, listener=listener, lander=lander), "127.0.0.1:0").start()
    thread.start()
    try:
        yield listener, lander, server.address, proxy, emu
    finally:
        stop.set()
        thread.join(20)
        server.close()
        lander.close()
        spool.close()
        client.close()
        proxy.close()


def test_probes_and_metrics_follow_the_listener_and_the_lander(streaming, tmp_path: Path) -> None:
    listener, lander, address, proxy, emu = streaming
    channels = len(listener.channels)
    assert channels == 2
    wait_for(lambda: httpx.get(f"http://{address}/readyz").status_code == 200, 15, "every channel streaming")
    assert httpx.get(f"http://{address}/livez").json() == {"status": "ok", "problems": []}
    first = metrics(address)
    assert value(first, "channels") == channels and value(first, "channels_connected") == channels
    assert value(first, "streams") == 40 and value(first, "connects_total") == channels
    assert value(first, "ready") == 1.0

    # Two minutes of PI time arrive at once: values with lags up to two minutes, sealed but not yet landed.
    advance(emu, "2m")
    wait_for(lambda: listener.stats.values > 0, 15, "channel values")
    reader = SpoolReader(tmp_path / "spool")

    def channel_rows_sealed() -> int:
        segments = [read_segment_file(s.path) for s in reader.ready()]
        return sum(int((s["origin"] == "channel").sum()) for s in segments)

    wait_for(lambda: channel_rows_sealed() == listener.stats.values, 15, "every received value sealed")
    before = metrics(address)
    assert value(before, "values_received_total") == listener.stats.values == channel_rows_sealed()
    assert value(before, "spool_backlog_segments") == len(reader.ready()) >= 1
    assert value(before, "spool_backlog_bytes") == sum(s.size for s in reader.ready())
    # Lag = server time at receipt (clock offset measured at connect) − PI timestamp, per value. The frozen clock
    # was moved after the offset was measured, so the figures are compared with the spooled lags, not with 0.
    lags = pl.concat([read_segment_file(s.path) for s in reader.ready()]).filter(
        pl.col("origin") == "channel"
    )
    lag_s = lags["lag_us"] / 1e6
    assert value(before, "lag_max_seconds") == pytest.approx(lag_s.max(), abs=1e-3)
    assert lag_s.min() <= value(before, "lag_p50_seconds") <= lag_s.max()
    assert value(before, "values_per_second") > 0

    # The lander lands the backlog; its counters match the lake.
    while lander.land_once() is not None:
        pass
    landed = metrics(address)
    rows = lake_rows(tmp_path / "lake")
    assert value(landed, "landed_values_inserted_total") == rows.height > 0
    assert value(landed, "spool_backlog_segments") == 0
    assert value(landed, "delta_version") == lander.stats.delta_version
    assert value(landed, "landing_latency_p50_seconds") == lander.stats.last_latency_p50_s

    # A drop: every socket cut and reconnects refused → not ready (with the reason), errors visible, still alive.
    proxy.refuse = True
    proxy.cut()
    wait_for(lambda: listener.stats.reconnects >= channels, 15, "both channels noticing the drop")
    probe = httpx.get(f"http://{address}/readyz")
    assert probe.status_code == 503
    assert probe.json()["problems"] == [f"{channels} of {channels} channels not connected and caught up"]
    assert httpx.get(f"http://{address}/livez").status_code == 200
    dropped = metrics(address)
    assert value(dropped, "reconnects_total") >= channels and value(dropped, "ready") == 0.0
    [(labels, when)] = [
        (dict(k[1]), v)
        for k, v in dropped.items()
        if k[0] == "osipi_stream_last_error_timestamp_seconds" and dict(k[1])["component"] == "listener"
    ]
    assert labels["error"].startswith("channel ") and when > datetime.fromisoformat(START).timestamp()
    proxy.refuse = False
    wait_for(
        lambda: httpx.get(f"http://{address}/readyz").status_code == 200, 15, "ready again after the drop"
    )
    assert httpx.get(f"http://{address}/nope").status_code == 404
    assert httpx.get(f"http://{address}/status").json()["listener"]["channels_connected"] == channels


def test_health_address_is_checked() -> None:
    assert parse_address("127.0.0.1:9808") == ("127.0.0.1", 9808)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("9808", "localhost", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            parse_address(bad)


def test_listen_with_land_is_one_service(emulator_factory, tmp_path: Path) -> None:
    """`listen --land`: one process spools and lands, serves both parts' figures, and lands its last segment on
    SIGTERM (nothing left in ready/)."""
    emu = emulator_factory(
        "--tags", "200", "--clock", f"offset:{START}", "--clock-rate", "30", "--channel-poll-ms", "100"
    )
    ids = web_ids(emu.api)
    spool_dir, lake = tmp_path / "spool", tmp_path / "lake"
    cmd = stream_cmd(
        "listen", spool_dir, "--pi-url", emu.api, "--land", "--lake", str(lake), "--channel-size", "20"
    )
    for w in ids:
        cmd += ["--web-id", w]
    procs = Processes()
    try:
        proc = procs.start(cmd, {**os.environ})
        address_file = spool_dir / "listen.address"
        wait_for(address_file.exists, 30, "the health endpoint")
        address = address_file.read_text()
        wait_for(lambda: httpx.get(f"http://{address}/readyz").status_code == 200, 30, "ready")
        wait_for(lambda: value(metrics(address), "commits_total") >= 2, 30, "two landings")
        samples = metrics(address)
        assert value(samples, "channels_connected") == 2 and value(samples, "landing_errors_total") == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        procs.stop()
    reader = SpoolReader(spool_dir)
    assert reader.ready() == [] and reader.landed()
    spooled = pl.concat([read_segment_file(s.path) for s in reader.landed()]).unique(
        ["web_id", "timestamp", "ordinal"]
    )
    assert lake_rows(lake).height == spooled.height
