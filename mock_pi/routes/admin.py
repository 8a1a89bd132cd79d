"""Admin API (only with --admin, outside /piwebapi): move the clock, and insert/replace/delete archive values.

Lets tests produce late data, edits and the passage of time deterministically instead of sleeping.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.http import PIHTTPError, json_response
from mock_pi.pitime import parse_interval, parse_time
from mock_pi.routes.stream_common import resolve, state_of
from mock_pi.writes import parse_event


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PIHTTPError(400, f"The request body is not valid JSON: {exc}.") from None


def _get(body: dict[str, Any], name: str) -> Any:
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


async def get_clock(request: Request) -> Response:
    return json_response(state_of(request).clock.describe())


async def post_clock(request: Request) -> Response:
    """Body keys (any subset, applied in this order): Real (bool), Freeze (ISO or "*"), Offset (ISO),
    Rate (float), Advance (interval such as "1h" or "-30m")."""
    clock = state_of(request).clock
    body = await _body(request)
    if not isinstance(body, dict) or not body:
        raise PIHTTPError(400, "Body must be an object with Real, Freeze, Offset, Rate and/or Advance.")
    now = clock.now_us()
    try:
        if _get(body, "Real"):
            clock.set_real(float(_get(body, "Rate") or 1.0))
        if _get(body, "Freeze") is not None:
            clock.freeze(parse_time(str(_get(body, "Freeze")), now))
        if _get(body, "Offset") is not None:
            clock.offset(parse_time(str(_get(body, "Offset")), now))
        if _get(body, "Rate") is not None and not _get(body, "Real"):
            clock.set_rate(float(_get(body, "Rate")))
        if _get(body, "Advance") is not None:
            clock.advance(parse_interval(str(_get(body, "Advance"))))
    except (ValueError, TypeError) as exc:
        raise PIHTTPError(400, f"Invalid clock change: {exc}") from None
    return json_response(clock.describe())


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict):
        body = _get(body, "Items")
    if not isinstance(body, list):
        raise PIHTTPError(400, 'Body must be a list of TimedValues (or {"Items": [...]}).')
    return body


async def _edit(request: Request, mode: str) -> Response:
    state = state_of(request)
    src = resolve(state, request.path_params["web_id"], write=True)
    items = _items(await _body(request))
    now = state.clock.now_us()
    events = [parse_event(src.point, item, now, f"Item {i}") for i, item in enumerate(items)]
    for ts, event in events:
        if mode == "insert":
            state.archive.insert(src.point, ts, event)
        else:
            state.archive.replace(src.point, ts, event)
    return json_response({"Inserted" if mode == "insert" else "Replaced": len(events)})


async def insert(request: Request) -> Response:
    return await _edit(request, "insert")


async def replace(request: Request) -> Response:
    return await _edit(request, "replace")


async def delete(request: Request) -> Response:
    state = state_of(request)
    src = resolve(state, request.path_params["web_id"], write=True)
    body = await _body(request)
    stamps = _get(body, "Timestamps") if isinstance(body, dict) else body
    if not isinstance(stamps, list):
        raise PIHTTPError(400, 'Body must be a list of timestamps (or {"Timestamps": [...]}).')
    now = state.clock.now_us()
    removed = 0
    for text in stamps:
        try:
            ts = parse_time(str(text), now)
        except ValueError:
            raise PIHTTPError(400, f"The timestamp '{text}' is not a valid time.") from None
        removed += state.archive.delete(src.point, ts)
    return json_response({"Deleted": removed})


ROUTES: list[BaseRoute] = [
    Route("/admin/clock", get_clock, methods=["GET"]),
    Route("/admin/clock", post_clock, methods=["POST"]),
    Route("/admin/streams/{web_id}/insert", insert, methods=["POST"]),
    Route("/admin/streams/{web_id}/replace", replace, methods=["POST"]),
    Route("/admin/streams/{web_id}/delete", delete, methods=["POST"]),
]
