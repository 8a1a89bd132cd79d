"""PI Web API channels: WebSocket subscriptions that push every archive value change of one or many streams.

Owns `/piwebapi/streams/{webId}/channel`, `/piwebapi/streamsets/channel?webId=..` and
`/piwebapi/streamsets/{webId}/channel`; each poll sends the values archived between the previous poll and now, in a
seeded random order (streams and values), since PI does not guarantee chronological order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from mock_pi.archive import Values
from mock_pi.http import PIHTTPError, Query, error_response
from mock_pi.metrics import count_values
from mock_pi.routes.af_common import Ctx
from mock_pi.routes.af_streamsets import _streams_of as parent_attributes
from mock_pi.serialize import stream_item_json, timed_value_fragments
from mock_pi.state import StreamSource

HEARTBEAT = '{"Links":{},"Items":[]}'


class ChannelRefused(Exception):
    """The handshake must be refused (unknown WebId, bad parameter) with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _streams(state: Any, web_ids: Iterable[str]) -> list[StreamSource]:
    subs: list[StreamSource] = []
    seen: set[str] = set()
    for web_id in web_ids:
        if web_id in seen:
            continue
        seen.add(web_id)
        source = state.stream_source(web_id)
        if source is None:
            raise ChannelRefused(
                404, f"The stream '{web_id}' was not found (no PI point or PI Point attribute)."
            )
        subs.append(source)
    return subs


def _parent_streams(websocket: WebSocket, state: Any, q: Query) -> list[StreamSource]:
    """The PI Point attributes of an element, event frame or attribute, chosen by the same parent filters
    (nameFilter, categoryName, templateName, searchFullHierarchy, ...) as GET /streamsets/{webId}/value."""
    ctx = Ctx(websocket, state, state.af, state.clock.now_us(), "", q)  # type: ignore[arg-type]
    _, attrs = parent_attributes(ctx)
    return _streams(state, (a.web_id for a in attrs))


def _unordered(values: Values, rng: np.random.Generator) -> Values:
    """The values in a random order, as PI's channels deliver them (ordering is not guaranteed chronological).

    Values sharing a timestamp keep their archive order: PI sends events in order of arrival, and a duplicate
    timestamp's later event arrived later, so a client can still number duplicates as the archive does.
    """
    n = len(values)
    if n < 2:
        return values
    slot_ts = values.ts_us[rng.permutation(n)]
    # Fill the shuffled slots of each timestamp with that timestamp's events in archive order.
    slots = np.argsort(slot_ts, kind="stable")
    order = np.empty(n, dtype=np.int64)
    order[slots] = np.argsort(values.ts_us, kind="stable")
    return values.take(order)


def _item(sub: StreamSource, values: Values) -> str:
    body = "[" + ",".join(timed_value_fragments(values, sub.point, units=sub.units)) + "]"
    header = {"WebId": sub.web_id, "Name": sub.name, "Path": sub.path, "Links": {}}
    return stream_item_json(header, "Items", body, sub.units)


def _envelope(items: list[str]) -> str:
    return '{"Links":{},"Items":[' + ",".join(items) + "]}"


class _Poller:
    """Reads the archive for a channel's streams, skipping streams whose next event is known to lie ahead.

    Each read looks a little past `now` (values are a pure function of time) to learn a stream's next event, so
    a poll touches only streams that changed: thousands of slow tags cost little per poll. An edit (a write
    through the API) changes the stream's edit count and forces a read.
    """

    def __init__(self, state: Any, subs: list[StreamSource]) -> None:
        self.archive = state.archive
        self.subs = subs
        self.next_us = [-1] * len(subs)
        self.edits = [-1] * len(subs)
        self.seed = state.config.seed
        # Messages with values built so far: the shuffle of message k is seeded by (seed, k), so a run is repeatable.
        self.messages = 0

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.messages + 1))

    def _message(self, items: list[str], rng: np.random.Generator) -> str:
        if items:
            self.messages += 1
            items = [items[i] for i in rng.permutation(len(items))]
        return _envelope(items)

    def snapshot(self, now_us: int) -> tuple[str, int]:
        """Each stream's current value (streams with no value yet are left out), streams in random order."""
        items: list[str] = []
        total = 0
        rng = self._rng()
        for sub in self.subs:
            values = self.archive.snapshot(sub.point, now_us)
            if len(values):
                total += len(values)
                items.append(_item(sub, values))
        return self._message(items, rng), total

    def changes(self, start_us: int, end_us: int) -> tuple[str, int]:
        """Values with start < ts <= end of every stream that has any, as one message, shuffled as PI may send them."""
        items: list[str] = []
        total = 0
        rng = self._rng()
        archive = self.archive
        for i, sub in enumerate(self.subs):
            edits = archive.edit_count(sub.point)
            if self.next_us[i] > end_us and edits == self.edits[i]:
                continue
            ahead = end_us + max(2 * sub.point.spacing_us, end_us - start_us)
            values = archive.recorded(sub.point, start_us + 1, ahead, now_us=ahead)
            cut = int(np.searchsorted(values.ts_us, end_us, side="right"))
            self.next_us[i] = int(values.ts_us[cut]) if cut < len(values) else ahead
            self.edits[i] = edits
            if cut:
                total += cut
                items.append(_item(sub, _unordered(values.take(slice(0, cut)), rng)))
        return self._message(items, rng), total


class _Channel:
    """One open channel: polls the archive on the emulator's poll interval and pushes changes."""

    def __init__(self, websocket: WebSocket, state: Any, subs: list[StreamSource], q: Query) -> None:
        self.websocket = websocket
        self.clock = state.clock
        self.poller = _Poller(state, subs)
        self.include_initial = q.get_bool("includeInitialValues", False)
        self.heartbeat = q.get_int("heartbeatRate", 0)
        # The interval is wall time: a frozen clock still polls (and heartbeats); an accelerated clock makes each
        # poll cover more value time.
        self.poll_s = max(0.001, state.config.channel_poll_ms / 1000)

    async def _send(self, text: str, values: int) -> None:
        count_values(values)
        await self.websocket.send_text(text)

    async def _read(self, fn: Any, *args: int) -> tuple[str, int]:
        if len(self.poller.subs) <= 50:
            return fn(*args)
        # Thousands of streams take a noticeable time to read: keep the event loop free for other clients.
        return await run_in_threadpool(fn, *args)

    async def run(self) -> None:
        last = self.clock.now_us()
        if self.include_initial:
            await self._send(*await self._read(self.poller.snapshot, last))
        empty_polls = 0
        while True:
            await anyio.sleep(self.poll_s)
            now = self.clock.now_us()
            text, values = await self._read(self.poller.changes, last, now) if now > last else (HEARTBEAT, 0)
            # A clock moved backwards (admin) must not resend what was already delivered.
            last = max(last, now)
            if values:
                empty_polls = 0
                await self._send(text, values)
                continue
            empty_polls += 1
            if self.heartbeat > 0 and empty_polls >= self.heartbeat:
                empty_polls = 0
                await self._send(HEARTBEAT, 0)


async def _refuse(websocket: WebSocket, status: int, message: str) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(status, message))
    else:
        await websocket.close(code=1008)  # before accept: the server answers the upgrade with 403


async def _serve(websocket: WebSocket, resolve: Any) -> None:
    state = websocket.app.state.emulator
    q = Query(websocket.query_params.multi_items())
    try:
        channel = _Channel(websocket, state, resolve(state, q), q)
    except PIHTTPError as exc:
        await _refuse(websocket, exc.status, "; ".join(exc.messages))
        return
    except ChannelRefused as exc:
        await _refuse(websocket, exc.status, exc.message)
        return
    await websocket.accept()

    async def watch_disconnect(scope: anyio.CancelScope) -> None:
        # Clients never send on a channel; a receive returning means they went away.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
        scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_disconnect, tg.cancel_scope)
            await channel.run()
    except (WebSocketDisconnect, OSError):
        return
    finally:
        if (
            websocket.application_state == WebSocketState.CONNECTED
            and websocket.client_state == WebSocketState.CONNECTED
        ):
            await websocket.close()


async def stream_channel(websocket: WebSocket) -> None:
    web_id = websocket.path_params["web_id"]
    await _serve(websocket, lambda state, q: _streams(state, [web_id]))


async def streamset_channel(websocket: WebSocket) -> None:
    def resolve(state: Any, q: Query) -> list[StreamSource]:
        web_ids = q.get_all("webId")
        if not web_ids:
            raise ChannelRefused(
                400, "The parameter 'webId' is required: /streamsets/channel?webId=A&webId=B."
            )
        return _streams(state, web_ids)

    await _serve(websocket, resolve)


async def parent_channel(websocket: WebSocket) -> None:
    await _serve(websocket, lambda state, q: _parent_streams(websocket, state, q))


ROUTES: list[BaseRoute] = [
    WebSocketRoute("/piwebapi/streams/{web_id}/channel", stream_channel),
    WebSocketRoute("/piwebapi/streamsets/channel", streamset_channel),
    WebSocketRoute("/piwebapi/streamsets/{webId}/channel", parent_channel),
]
