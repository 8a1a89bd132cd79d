"""Channel messages are unordered, as PI's may be: the client puts them in time order and numbers duplicates.

A real emulator shuffles streams and values of each message (seeded); three events inserted at one timestamp
check that ordinals still follow archive order, against the client's own recorded read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import polars as pl
from websockets.sync.client import connect

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.channels import channel_message_frame
from osipi_dagster_tests.client.expected import Expected

FROZEN = datetime(2024, 5, 1, 12, tzinfo=UTC)
HEARTBEAT = {"Links": {}, "Items": []}
KEY = ["web_id", "timestamp", "ordinal"]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_shuffled_message_decodes_to_exactly_the_recorded_values(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(
        "--seed", "42", "--tags", "60", "--clock", f"frozen:{FROZEN:%Y-%m-%dT%H:%M:%SZ}", "--admin",
        "--channel-poll-ms", "40",
    )  # fmt: skip
    expected = Expected(42, 60, FROZEN)
    points = [
        p for p in (expected.point(i) for i in range(60)) if p.is_numeric and p.spacing_us <= 60_000_000
    ]
    web_ids = [p.web_id for p in points[:5]]
    assert len(web_ids) == 5
    # Three events at one timestamp (a late PI buffer flush beside each other): their order is the archive's.
    twin_at = FROZEN + timedelta(seconds=90)
    twins = [{"Timestamp": twin_at.isoformat().replace("+00:00", "Z"), "Value": v} for v in (1.5, 2.5, 3.5)]
    httpx.post(f"{emu.root}/admin/streams/{web_ids[0]}/insert", json=twins, timeout=10).raise_for_status()

    url = f"ws://127.0.0.1:{emu.port}/piwebapi/streamsets/channel?" + "&".join(f"webId={w}" for w in web_ids)
    with connect(url, open_timeout=10) as ws:
        httpx.post(f"{emu.root}/admin/clock", json={"Advance": "10m"}, timeout=10).raise_for_status()
        while (message := orjson.loads(ws.recv(timeout=10))) == HEARTBEAT:
            pass

    # The emulator really sends it unordered: values of most streams out of time order.
    items = {item["WebId"]: item["Items"] for item in message["Items"]}
    assert sorted(items) == sorted(web_ids)
    shuffled = [w for w, values in items.items() if [parse(v["Timestamp"]) for v in values] != sorted(
        parse(v["Timestamp"]) for v in values
    )]  # fmt: skip
    assert len(shuffled) >= 3, shuffled
    assert [v["Value"] for v in items[web_ids[0]] if parse(v["Timestamp"]) == twin_at] == [1.5, 2.5, 3.5]

    frame = channel_message_frame(message)
    # Decoded in time order per stream, with exactly the values (and ordinals) of a recorded read.
    assert frame.equals(frame.sort(KEY))
    with PIWebAPIClient(ClientConfig(emu.api)) as pi:
        recorded = pi.recorded(web_ids, FROZEN, FROZEN + timedelta(minutes=10), include_end=True)
    recorded = recorded.filter(pl.col("timestamp") > FROZEN)
    assert recorded.height > 50
    assert frame.sort(KEY).equals(recorded.sort(KEY))
    twins_decoded = frame.filter((pl.col("web_id") == web_ids[0]) & (pl.col("timestamp") == twin_at))
    assert twins_decoded.select("ordinal", "value").rows() == [(0, 1.5), (1, 2.5), (2, 3.5)]
