"""Request metrics of mock_pi against a real emulator: per-endpoint counts by route template, status codes, bytes
and values served, faults and channels included, plumbing excluded, and read-and-reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from osipi_dagster_tests.emulator import Emulator, start_emulator

ARGS = ("--seed", "3", "--tags", "30", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin")


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(*ARGS, log_dir=tmp_path_factory.mktemp("metrics")) as emu:
        yield emu


def metrics(emu: Emulator) -> dict[str, Any]:
    return httpx.get(f"{emu.root}/metrics", timeout=5).json()


def reset(emu: Emulator) -> dict[str, Any]:
    r = httpx.post(f"{emu.root}/metrics/reset", timeout=5)
    assert r.status_code == 200
    return r.json()


def test_counts_per_endpoint_template(emu: Emulator) -> None:
    reset(emu)
    with httpx.Client(timeout=10) as http:
        server = http.get(f"{emu.api}/dataservers").json()["Items"][0]
        points = http.get(server["Links"]["Points"], params={"maxCount": 3}).json()["Items"]
        recorded = [
            http.get(f"{emu.api}/streams/{p['WebId']}/recorded", params={"startTime": "*-2h", "endTime": "*"})
            for p in points
        ]
        stream_set = http.get(
            f"{emu.api}/streamsets/recorded",
            params=[("webId", p["WebId"]) for p in points] + [("startTime", "*-1h")],
        )
        missing = http.get(f"{emu.api}/nothing/here")
        http.get(f"{emu.root}/health")  # plumbing: not counted
    m = metrics(emu)
    endpoints = m["endpoints"]
    rec = endpoints["GET /streams/{web_id}/recorded"]
    assert rec["requests"] == 3
    assert rec["status"] == {"200": 3}
    assert rec["bytes_sent"] == sum(len(r.content) for r in recorded)
    assert rec["values_served"] == sum(len(r.json()["Items"]) for r in recorded)
    sets = endpoints["GET /streamsets/recorded"]
    assert sets["requests"] == 1
    assert sets["values_served"] == sum(len(i["Items"]) for i in stream_set.json()["Items"])
    assert endpoints["GET /dataservers"]["requests"] == 1
    assert endpoints["GET /dataservers/{web_id}/points"]["requests"] == 1
    assert missing.status_code == 404
    assert endpoints["GET /{rest:path}"]["status"] == {"404": 1}
    assert m["requests"] == 7
    assert m["status"] == {"200": 6, "404": 1}
    assert m["bytes_sent"] == sum(e["bytes_sent"] for e in endpoints.values())
    assert not any("/health" in name or "/metrics" in name for name in endpoints)


def test_reset_returns_the_counters_it_cleared(emu: Emulator) -> None:
    reset(emu)
    for _ in range(4):
        httpx.get(f"{emu.api}/system", timeout=5)
    before = reset(emu)
    assert before["endpoints"]["GET /system"]["requests"] == 4
    assert before["requests"] == 4
    after = metrics(emu)
    assert after["requests"] == 0
    assert after["endpoints"] == {}


def test_faulted_responses_are_counted_under_their_endpoint(emu: Emulator) -> None:
    httpx.post(f"{emu.root}/admin/faults", json={"profile": "ratelimit:1"}, timeout=5).raise_for_status()
    try:
        reset(emu)
        r = httpx.get(f"{emu.api}/system/status", timeout=5)
        assert r.status_code == 429
    finally:
        httpx.post(f"{emu.root}/admin/faults", json={"profile": "none"}, timeout=5).raise_for_status()
    status = metrics(emu)["endpoints"]["GET /system/status"]
    assert (status["requests"], status["status"], status["bytes_sent"]) == (1, {"429": 1}, len(r.content))


def test_channel_messages_and_values_are_counted(emu: Emulator) -> None:
    server = httpx.get(f"{emu.api}/dataservers", timeout=5).json()["Items"][0]
    web_id = httpx.get(server["Links"]["Points"], timeout=5).json()["Items"][0]["WebId"]
    reset(emu)

    async def one_message() -> str:
        url = f"ws://127.0.0.1:{emu.port}/piwebapi/streams/{web_id}/channel?includeInitialValues=true"
        async with websockets.connect(url) as ws:
            return str(await asyncio.wait_for(ws.recv(), 10))

    message = asyncio.run(one_message())
    # The connection is recorded when it closes; poll briefly for the server to notice the close.
    channel = asyncio.run(_wait_for_channel_record(emu))["endpoints"]["WS /streams/{web_id}/channel"]
    assert channel["requests"] == 1
    assert channel["status"] == {"101": 1}
    assert channel["ws_messages"] == 1
    assert channel["bytes_sent"] == len(message.encode())
    assert channel["values_served"] == 1


async def _wait_for_channel_record(emu: Emulator) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(100):
            m = (await http.get(f"{emu.root}/metrics")).json()
            if "WS /streams/{web_id}/channel" in m["endpoints"]:
                return m
            await asyncio.sleep(0.05)  # bounded poll of a condition, not synchronisation by sleeping
    pytest.fail("the closed channel never appeared in /metrics")
