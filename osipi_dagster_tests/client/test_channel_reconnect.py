"""The channels client survives a dropped socket: it reconnects and back-fills the gap from recorded values.

A real emulator with a frozen clock, a loopback TCP proxy that cuts and refuses connections, and the admin clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl

from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster_tests.streaming.helpers import Proxy, wait_for

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


KEY = ["web_id", "timestamp", "ordinal"]
GAP_END = timedelta(minutes=10, seconds=40)


def test_reconnect_backfills_exactly_the_missed_values(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(
        "--seed",
        "5",
        "--tags",
        "40",
        "--clock",
        "frozen:2024-05-01T12:00:00Z",
        "--admin",
        "--channel-poll-ms",
        "40",
    )
    catalog = Catalog(seed=5, tags=40, data_servers=2)
    archive = Archive(5, lambda: to_us(T0 + timedelta(hours=1)))
    points = [catalog.point_at(i) for i in range(40) if catalog.point_at(i).is_numeric]

    def count(point, start: timedelta, end: timedelta) -> int:  # type: ignore[no-untyped-def]
        return len(archive.recorded(point, to_us(T0 + start) + 1, to_us(T0 + end)))

    # Dense tags, and a quiet one that delivers nothing before the drop but archives values during it.
    dense = [p.web_id for p in points if p.spacing_us <= 15_000_000][:6]
    quiet = [
        p.web_id
        for p in points
        if count(p, timedelta(0), timedelta(seconds=20)) == 0 and count(p, timedelta(seconds=20), GAP_END) > 0
    ][:1]
    web_ids = dense + quiet
    assert len(dense) >= 3 and quiet

    def advance(span: str) -> None:
        httpx.post(f"{emu.root}/admin/clock", json={"Advance": span}).raise_for_status()

    proxy = Proxy(emu.port)
    frames: list[pl.DataFrame] = []
    stop = threading.Event()
    config = ClientConfig(proxy.api, backoff_base_s=0.05, backoff_max_s=0.2)
    with PIWebAPIClient(ClientConfig(emu.api)) as direct:
        stream = ChannelStream(
            config, web_ids, heartbeat_rate=1, silence_timeout_s=5, max_reconnects=50, backfill=direct
        )

        def consume() -> None:
            for frame in stream:  # leaving the loop closes the generator and its socket
                frames.append(frame)
                if stop.is_set():
                    return

        def delivered() -> pl.DataFrame:
            return pl.concat(list(frames)) if frames else pl.DataFrame()

        def want(until: datetime) -> pl.DataFrame:
            got = direct.recorded(web_ids, T0, until, include_end=True)
            return got.filter(pl.col("timestamp") > T0)

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        try:
            wait_for(
                lambda: proxy.accepted >= 1 and stream._connected_once, 10, "the first channel connection"
            )
            advance("20s")
            first = want(T0 + timedelta(seconds=20))
            wait_for(lambda: delivered().height >= first.height, 10, "values of the first 20 s")

            # Drop: cut the socket and refuse reconnects while PI archives 10 more minutes.
            proxy.refuse = True
            proxy.cut()
            wait_for(lambda: stream.reconnects >= 1, 10, "the client to notice the drop")
            advance("10m")
            proxy.refuse = False
            advance("20s")
            end = T0 + GAP_END
            expected = want(end)
            assert expected.filter(pl.col("web_id").is_in(quiet)).height >= 1
            wait_for(lambda: delivered().height >= expected.height, 15, "the gap back-filled and live values")
        finally:
            stop.set()
            advance("30s")  # one more message wakes the consumer up so it can stop
            thread.join(timeout=30)
            proxy.close()

    got = delivered().filter(pl.col("timestamp") <= end)
    assert got.filter(pl.struct(KEY).is_duplicated()).height == 0
    cols = [*KEY, "value", "good"]
    assert got.select(cols).sort(KEY).equals(expected.select(cols).sort(KEY))
    assert stream.reconnects >= 1
    assert not thread.is_alive()
