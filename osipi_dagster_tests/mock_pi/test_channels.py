"""WebSocket channels of mock_pi against a real emulator: initial values, exact archive values between polls
(checked against /streams/{id}/recorded), seeded shuffling, heartbeats, by-parent channels, refusals, and thousands
of streams.

The emulator's clock is frozen and moved with POST /admin/clock, so each poll's window is known exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from osipi_dagster_tests.emulator import Emulator, start_emulator

FROZEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLL_MS = 40
ARGS = ("--seed", "42", "--tags", "2000", "--clock", f"frozen:{FROZEN:%Y-%m-%dT%H:%M:%SZ}", "--admin")
ARGS += ("--channel-poll-ms", str(POLL_MS))
HEARTBEAT = {"Links": {}, "Items": []}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(*ARGS, log_dir=tmp_path_factory.mktemp("channels")) as emu:
        yield emu


@pytest.fixture(scope="module")
def point_ids(emu: Emulator) -> list[str]:
    """WebIds of every point of the first data server (1000 of the 2000 tags)."""
    with httpx.Client(timeout=30) as http:
        server = http.get(f"{emu.api}/dataservers").json()["Items"][0]
        points = http.get(f"{server['Links']['Points']}", params={"maxCount": 1000}).json()["Items"]
    return [p["WebId"] for p in points]


def ws_url(emu: Emulator, path: str) -> str:
    return f"ws://127.0.0.1:{emu.port}/piwebapi{path}"


def now(emu: Emulator) -> datetime:
    text = httpx.get(f"{emu.root}/admin/clock", timeout=5).json()["Now"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def advance(emu: Emulator, interval: str) -> datetime:
    r = httpx.post(f"{emu.root}/admin/clock", json={"Advance": interval}, timeout=5)
    assert r.status_code == 200, r.text
    return datetime.fromisoformat(r.json()["Now"].replace("Z", "+00:00"))


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recorded_after(emu: Emulator, web_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """What /streams/{id}/recorded says was archived with start < ts <= end (the channel's window)."""
    r = httpx.get(
        f"{emu.api}/streams/{web_id}/recorded",
        params={"startTime": iso(start + timedelta(microseconds=1)), "endTime": iso(end), "maxCount": 100000},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["Items"]


def chronological(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stream's values in time order; the sort is stable, so duplicate timestamps keep the message's order.

    PI does not guarantee chronological order in channel messages, and the emulator shuffles each message.
    """
    return sorted(values, key=lambda v: datetime.fromisoformat(v["Timestamp"].replace("Z", "+00:00")))


def by_stream(message: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {item["WebId"]: chronological(item["Items"]) for item in message["Items"]}


async def receive(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_data(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(ws, max(0.01, deadline - time.monotonic()))
        if message != HEARTBEAT:
            return message


def test_initial_values_are_the_current_values(emu: Emulator, point_ids: list[str]) -> None:
    ids = point_ids[:5]
    url = ws_url(
        emu, "/streamsets/channel?" + "&".join(f"webId={w}" for w in ids) + "&includeInitialValues=true"
    )

    async def scenario() -> dict[str, Any]:
        async with websockets.connect(url) as ws:
            return await receive(ws)

    message = asyncio.run(scenario())
    expected = httpx.get(f"{emu.api}/streamsets/value", params=[("webId", w) for w in ids], timeout=10).json()
    assert sorted(item["WebId"] for item in message["Items"]) == sorted(ids)
    got_by_id = {item["WebId"]: item for item in message["Items"]}
    for want in expected["Items"]:
        got = got_by_id[want["WebId"]]
        assert got["Name"] == want["Name"] and got["Path"] == want["Path"]
        assert got["UnitsAbbreviation"] == want["UnitsAbbreviation"]
        assert got["Items"] == [want["Value"]]


def test_messages_carry_exactly_the_archive_values_between_polls(emu: Emulator, point_ids: list[str]) -> None:
    ids = point_ids[:12]
    url = ws_url(emu, "/streamsets/channel?" + "&".join(f"webId={w}" for w in ids))

    async def scenario() -> list[tuple[datetime, datetime, dict[str, Any]]]:
        windows = []
        async with websockets.connect(url) as ws:
            start = now(emu)
            for step in ("10m", "45s", "2h"):
                end = advance(emu, step)
                windows.append((start, end, await receive_data(ws)))
                start = end
        return windows

    for start, end, message in asyncio.run(scenario()):
        by_id = by_stream(message)
        expected = {w: recorded_after(emu, w, start, end) for w in ids}
        # Streams without changes are left out; every other stream carries exactly its archived values.
        assert by_id == {w: values for w, values in expected.items() if values}
        assert 0 < len(by_id) <= len(ids)


def test_messages_are_shuffled_by_a_seeded_order(emu: Emulator, point_ids: list[str]) -> None:
    """Streams and values come in a random order (PI does not promise chronological order), seeded from --seed and
    the message number: two channels on the same streams see the same window as the same text."""
    ids = point_ids[:12]
    url = ws_url(emu, "/streamsets/channel?" + "&".join(f"webId={w}" for w in ids))

    async def scenario() -> tuple[str, str, datetime, datetime]:
        async with websockets.connect(url) as one, websockets.connect(url) as two:
            start = now(emu)
            end = advance(emu, "20m")

            async def first_data(ws: ClientConnection) -> str:
                while (raw := await asyncio.wait_for(ws.recv(), 10)) == orjson.dumps(HEARTBEAT).decode():
                    pass
                return str(raw)

            return await first_data(one), await first_data(two), start, end

    text_one, text_two, start, end = asyncio.run(scenario())
    assert text_one == text_two
    message = orjson.loads(text_one)
    sent_ids = [item["WebId"] for item in message["Items"]]
    assert sent_ids != [w for w in ids if w in set(sent_ids)]
    out_of_order = [
        item["WebId"] for item in message["Items"] if chronological(item["Items"]) != item["Items"]
    ]
    assert len(out_of_order) >= len(sent_ids) // 2
    assert by_stream(message) == {w: values for w in ids if (values := recorded_after(emu, w, start, end))}


def test_single_stream_channel_and_attribute_stream(emu: Emulator, point_ids: list[str]) -> None:
    web_id = point_ids[3]

    async def scenario() -> tuple[datetime, datetime, dict[str, Any]]:
        async with websockets.connect(ws_url(emu, f"/streams/{web_id}/channel")) as ws:
            start = now(emu)
            end = advance(emu, "3h")
            return start, end, await receive_data(ws)

    start, end, message = asyncio.run(scenario())
    # Even one stream uses the stream-set shape (the official deployment test reads Items[0].Items[0]).
    assert [item["WebId"] for item in message["Items"]] == [web_id]
    assert chronological(message["Items"][0]["Items"]) == recorded_after(emu, web_id, start, end)


def test_heartbeat_after_empty_polls(emu: Emulator, point_ids: list[str]) -> None:
    url = ws_url(emu, f"/streams/{point_ids[0]}/channel?heartbeatRate=3")

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        async with websockets.connect(url) as ws:
            started = time.monotonic()
            first = await receive(ws)
            elapsed = time.monotonic() - started
            second = await receive(ws)
            return [first, second], elapsed

    messages, elapsed = asyncio.run(scenario())
    # The clock is frozen, so every poll is empty: a heartbeat after every 3 polls, nothing in between.
    assert messages == [HEARTBEAT, HEARTBEAT]
    assert elapsed >= 3 * POLL_MS / 1000 * 0.9


def test_no_heartbeat_by_default(emu: Emulator, point_ids: list[str]) -> None:
    async def scenario() -> None:
        async with websockets.connect(ws_url(emu, f"/streams/{point_ids[0]}/channel")) as ws:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 10 * POLL_MS / 1000)

    asyncio.run(scenario())


def test_parent_channel_streams_the_elements_pi_point_attributes(emu: Emulator) -> None:
    with httpx.Client(timeout=10) as http:
        server = http.get(f"{emu.api}/assetservers").json()["Items"][0]
        db = http.get(server["Links"]["Databases"]).json()["Items"][0]
        elements = http.get(db["Links"]["Elements"], params={"searchFullHierarchy": "true"}).json()["Items"]
        # Pick an element that has PI Point attributes (as its own /streamsets/{webId}/value reports).
        for element in elements:
            current = http.get(f"{emu.api}/streamsets/{element['WebId']}/value").json()["Items"]
            if current:
                break
        else:
            pytest.fail("no element with PI Point attributes in the emulator's AF database")

    url = ws_url(emu, f"/streamsets/{element['WebId']}/channel?includeInitialValues=true")

    async def scenario() -> dict[str, Any]:
        async with websockets.connect(url) as ws:
            return await receive(ws)

    message = asyncio.run(scenario())
    assert {i["WebId"]: i["Items"] for i in message["Items"]} == {i["WebId"]: [i["Value"]] for i in current}
    assert len(message["Items"]) == len(current)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/streams/F1DPnotAPointAtAllxxxxxxxxxxxxxxxxxx/channel", 404),
        ("/streamsets/channel?webId=F1DPnope", 404),
        ("/streamsets/channel", 400),
        ("/streamsets/F1EmNoSuchElement/channel", 404),
        ("/streams/{point}/channel?heartbeatRate=often", 400),
    ],
)
def test_refused_handshakes(emu: Emulator, point_ids: list[str], path: str, status: int) -> None:
    async def scenario() -> None:
        async with websockets.connect(ws_url(emu, path.format(point=point_ids[0]))):
            pass

    with pytest.raises(InvalidStatus) as err:
        asyncio.run(scenario())
    assert err.value.response.status_code == status
    assert orjson.loads(err.value.response.body)["Errors"]


def test_thousand_streams_in_one_channel(emu: Emulator, point_ids: list[str]) -> None:
    ids = point_ids[:1000]
    url = ws_url(
        emu, "/streamsets/channel?" + "&".join(f"webId={w}" for w in ids) + "&includeInitialValues=true"
    )

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], datetime, datetime, float]:
        try:
            ws = await websockets.connect(url, max_size=None, open_timeout=5)
        except (TimeoutError, InvalidStatus) as exc:
            pytest.fail(
                f"a {len(url)}-character channel URL was refused ({exc!r}): mock_pi/__main__.py must start uvicorn "
                "with h11_max_incomplete_event_size=1 MiB and WEBSOCKETS_MAX_LINE_LENGTH=1 MiB"
            )
        async with ws:
            initial = await receive(ws, 30)
            start = now(emu)
            end = advance(emu, "30s")
            started = time.monotonic()
            changes = await receive_data(ws, 30)
            return initial, changes, start, end, time.monotonic() - started

    initial, changes, start, end, latency = asyncio.run(scenario())
    assert len(initial["Items"]) == len(ids)
    got = by_stream(changes)
    assert got
    # Spot-check a sample against the archive; together they must account for every changed stream.
    for web_id in list(got)[:10]:
        assert got[web_id] == recorded_after(emu, web_id, start, end)
    counts = httpx.get(
        f"{emu.api}/streamsets/recorded",
        params=[("webId", w) for w in ids[:200]]
        + [("startTime", iso(start + timedelta(microseconds=1)))]
        + [("endTime", iso(end))],
        timeout=30,
    ).json()
    expected_200 = {i["WebId"]: i["Items"] for i in counts["Items"] if i["Items"]}
    assert {w: v for w, v in got.items() if w in set(ids[:200])} == expected_200
    assert latency < 5.0
