"""AF event-frame controllers: searches on a database or element (time-window and Backward*/Forward* search modes,
filters, child frames), an event frame and its attributes, child frames and referenced elements; and the admin
action that closes an in-progress frame (POST /admin/eventframes/{webId}/close, only with --admin).

Search modes follow PI Web API's "Search Mode" topic; an open frame's end counts as 9999-12-31 (AF's MaxValue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from starlette.routing import BaseRoute, Route

from mock_pi.af import MAX_EF_DURATION_US, Database, Element, EventFrame, day_of, wildcard
from mock_pi.http import PIHTTPError
from mock_pi.pitime import format_us, parse_time
from mock_pi.routes.af_assets import attribute_list
from mock_pi.routes.af_common import (
    API,
    Ctx,
    by_path,
    by_web_id,
    element_json,
    endpoint,
    event_frame_json,
    severity_filter,
)

OPEN_END = 1 << 62  # an in-progress frame's end for comparisons (after any real time)
WINDOW_MODES = ("Overlapped", "Inclusive", "StartInclusive", "EndInclusive", "InProgress")
WALK_MODES = (
    "BackwardFromStartTime",
    "ForwardFromStartTime",
    "BackwardFromEndTime",
    "ForwardFromEndTime",
    "BackwardInProgress",
    "ForwardInProgress",
)
# Backward* searches stop this many days before now: generated history has no beginning.
BACKWARD_HORIZON_DAYS = 366
# A walk that has enough matches still covers this many more days: frames (and their children) that started on
# an earlier day can still end, or begin a phase, inside the days already seen.
WALK_MARGIN_DAYS = MAX_EF_DURATION_US // (86_400 * 1_000_000) + 1

Frame = tuple[EventFrame, int, int | None]  # frame, start, end (None while in progress)


def _frame_filter(ctx: Ctx, element: Element | None) -> Callable[[EventFrame], bool]:
    """The non-time filters of GetEventFrames as one predicate."""
    name_re = wildcard(ctx.q.get("nameFilter"))
    template = (ctx.q.get("templateName") or "").lower()
    category = (ctx.q.get("categoryName") or "").lower()
    severities = severity_filter(ctx)
    ref_name_re = wildcard(ctx.q.get("referencedElementNameFilter"))
    ref_template = ctx.q.get("referencedElementTemplateName") or ""
    can_ack_b = None if ctx.q.get("canBeAcknowledged") is None else ctx.q.get_bool("canBeAcknowledged", False)
    is_ack_b = None if ctx.q.get("isAcknowledged") is None else ctx.q.get_bool("isAcknowledged", False)

    def keep(ef: EventFrame) -> bool:
        if element is not None and element not in ef.refs:
            return False
        if name_re is not None and not name_re.match(ef.name):
            return False
        if template and ef.template.name.lower() != template:
            return False
        if category and category not in (c.lower() for c in ef.categories):
            return False
        if severities is not None and ef.severity not in severities:
            return False
        if ref_name_re is not None and not any(ref_name_re.match(r.name) for r in ef.refs):
            return False
        if ref_template and not any(r.template.is_a(ref_template) for r in ef.refs):
            return False
        if can_ack_b is not None and ef.template.can_be_acknowledged != can_ack_b:
            return False
        # Emulated frames are never acknowledged.
        return not is_ack_b

    return keep


def _time_condition(mode: str, lo: int, hi: int) -> Callable[[int, int | None], bool]:
    """Does a frame [start, end] (end None = open) satisfy the search mode against [lo, hi] (walks use lo)?"""
    if mode == "Overlapped":
        return lambda s, e: s <= hi and (OPEN_END if e is None else e) >= lo
    if mode == "Inclusive":
        return lambda s, e: e is not None and s >= lo and e <= hi
    if mode == "StartInclusive":
        return lambda s, e: lo <= s <= hi
    if mode == "EndInclusive":
        return lambda s, e: e is not None and lo <= e <= hi
    if mode == "InProgress":
        return lambda s, e: e is None and lo <= s <= hi
    if mode == "BackwardFromStartTime":
        return lambda s, e: s <= lo
    if mode == "ForwardFromStartTime":
        return lambda s, e: s >= lo
    if mode == "BackwardFromEndTime":
        return lambda s, e: e is not None and e <= lo
    if mode == "ForwardFromEndTime":
        return lambda s, e: e is None or e > lo
    if mode == "BackwardInProgress":
        return lambda s, e: e is None and s <= lo
    if mode == "ForwardInProgress":
        return lambda s, e: e is None and s >= lo
    raise PIHTTPError(400, f"The search mode '{mode}' is not supported.")


def _with_children(ctx: Ctx, tops: Iterable[EventFrame], full: bool) -> Iterator[EventFrame]:
    for top in tops:
        if top.start_us > ctx.now_us:
            continue
        yield top
        if full:
            for child in top.descendants():
                if child.start_us <= ctx.now_us:
                    yield child


def _walk_days(ctx: Ctx, db: Database, mode: str, at: int) -> list[int]:
    now_day = day_of(ctx.now_us)
    margin = WALK_MARGIN_DAYS
    if mode.startswith("Forward"):
        days = list(range(day_of(at) - margin, now_day + 1))
    else:
        days = list(range(min(day_of(at) + margin, now_day), now_day - BACKWARD_HORIZON_DAYS - 1, -1))
    if mode.endswith("InProgress"):
        # Open frames started at most one maximal duration ago.
        days = [d for d in days if d >= now_day - margin]
    return days


def search_frames(
    ctx: Ctx, db: Database | None, element: Element | None, fixed: list[EventFrame] | None
) -> dict[str, Any]:
    """GetEventFrames over a database (db), or an explicit list of frames (fixed: an event frame's children)."""
    mode = ctx.choice("searchMode", "Overlapped", ("None", *WINDOW_MODES, *WALK_MODES))
    if mode == "None":
        raise PIHTTPError(400, "The search mode 'None' is not valid; use e.g. Overlapped.")
    full = ctx.q.get_bool("searchFullHierarchy", False)
    keep = _frame_filter(ctx, element)
    now = ctx.now_us
    start = ctx.time("startTime", "*-8h")
    walk = mode in WALK_MODES
    if walk:
        for forbidden in ("endTime", "sortField", "sortOrder"):
            if ctx.q.get(forbidden) is not None:
                raise PIHTTPError(
                    400, f"The parameter '{forbidden}' cannot be specified with searchMode {mode}."
                )
        lo = hi = start
    else:
        end = ctx.time("endTime", "*")
        lo, hi = min(start, end), max(start, end)
    cond = _time_condition(mode, lo, hi)

    def matching(frames: Iterable[EventFrame]) -> Iterator[Frame]:
        for ef in frames:
            e = ctx.af.end_us(ef, now)
            if cond(ef.start_us, e) and keep(ef):
                yield ef, ef.start_us, e

    complete = True
    if fixed is not None:
        found = list(matching(_with_children(ctx, fixed, full)))
    elif not walk:
        assert db is not None
        found = list(matching(_with_children(ctx, ctx.af.frames_overlapping(db, lo, hi, now), full)))
    else:
        assert db is not None
        need = ctx.q.get_int("startIndex", 0) + ctx.q.get_int("maxCount", 1000)
        found = []
        margin: int | None = None
        for day in _walk_days(ctx, db, mode, start):
            found.extend(matching(_with_children(ctx, ctx.af.frames_for_day(db, day), full)))
            if margin is None and len(found) > need:
                margin = WALK_MARGIN_DAYS
            elif margin is not None:
                margin -= 1
                if margin <= 0:
                    complete = False
                    break
    if walk:
        by_end = "EndTime" in mode
        found.sort(
            key=lambda f: ((OPEN_END if f[2] is None else f[2]) if by_end else f[1], f[0].name.lower()),
            reverse=mode.startswith("Backward"),
        )
        if not complete:
            # Only the first `need` (+1, so a Next link appears) are known to be in final order.
            found = found[: ctx.q.get_int("startIndex", 0) + ctx.q.get_int("maxCount", 1000) + 1]
    else:
        field = ctx.choice("sortField", "Name", ("Name", "StartTime", "EndTime"))
        desc = ctx.choice("sortOrder", "Ascending", ("Ascending", "Descending")) == "Descending"
        keys: dict[str, Callable[[Frame], Any]] = {
            "Name": lambda f: (f[0].name.lower(), f[1]),
            "StartTime": lambda f: (f[1], f[0].name.lower()),
            "EndTime": lambda f: (OPEN_END if f[2] is None else f[2], f[0].name.lower()),
        }
        found.sort(key=keys[field], reverse=desc)
    return ctx.page([f[0] for f in found], lambda ef: event_frame_json(ctx, ef))


@endpoint
def database_event_frames(ctx: Ctx) -> dict[str, Any]:
    return search_frames(ctx, by_web_id(ctx, Database, "asset database"), None, None)


@endpoint
def element_event_frames(ctx: Ctx) -> dict[str, Any]:
    el = by_web_id(ctx, Element, "element")
    return search_frames(ctx, el.db, el, None)


@endpoint
def child_event_frames(ctx: Ctx) -> dict[str, Any]:
    ef = by_web_id(ctx, EventFrame, "event frame")
    return search_frames(ctx, None, None, ef.children)


@endpoint
def get_event_frame(ctx: Ctx) -> dict[str, Any]:
    return event_frame_json(ctx, _visible(ctx, by_web_id(ctx, EventFrame, "event frame")))


@endpoint
def event_frame_by_path(ctx: Ctx) -> dict[str, Any]:
    return event_frame_json(ctx, _visible(ctx, by_path(ctx, EventFrame, "event frame")))


def _visible(ctx: Ctx, ef: EventFrame) -> EventFrame:
    # Frames are generated for whole days; one that has not started yet does not exist.
    if ef.start_us > ctx.now_us:
        raise PIHTTPError(404, f"The specified event frame '{ef.name}' was not found.")
    return ef


@endpoint
def event_frame_attributes(ctx: Ctx) -> dict[str, Any]:
    return attribute_list(ctx, _visible(ctx, by_web_id(ctx, EventFrame, "event frame")))


@endpoint
def referenced_elements(ctx: Ctx) -> dict[str, Any]:
    ef = _visible(ctx, by_web_id(ctx, EventFrame, "event frame"))
    return {"Links": {}, "Items": [element_json(ctx, el) for el in ef.refs]}


@endpoint
def admin_close_event_frame(ctx: Ctx) -> dict[str, Any]:
    if not ctx.state.config.admin:
        raise PIHTTPError(404, "Admin endpoints are disabled (start the emulator with --admin).")
    ef = _visible(ctx, by_web_id(ctx, EventFrame, "event frame"))
    body = _json_body(ctx)
    raw = body.get("EndTime")
    try:
        end = ctx.now_us if raw in (None, "") else parse_time(str(raw), ctx.now_us)
    except ValueError as exc:
        raise PIHTTPError(400, f"EndTime '{raw}' is not a valid time: {exc}") from None
    if end < ef.start_us:
        raise PIHTTPError(
            400, f"EndTime '{raw}' is before the event frame's StartTime {format_us(ef.start_us)}."
        )
    if end > ctx.now_us:
        raise PIHTTPError(400, f"EndTime '{raw}' is in the future; a frame can only be closed up to now.")
    try:
        ctx.af.close_event_frame(ef, end, ctx.now_us)
    except ValueError as exc:
        raise PIHTTPError(409, str(exc)) from None
    return event_frame_json(ctx, ef)


def _json_body(ctx: Ctx) -> dict[str, Any]:
    if not ctx.body.strip():
        return {}
    try:
        body = orjson.loads(ctx.body)
    except orjson.JSONDecodeError:
        raise PIHTTPError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise PIHTTPError(
            400, 'The request body must be a JSON object such as {"EndTime": "2024-05-01T12:00:00Z"}.'
        )
    return body


ROUTES: list[BaseRoute] = [
    Route(API + "/assetdatabases/{webId}/eventframes", database_event_frames, methods=["GET"]),
    Route(API + "/elements/{webId}/eventframes", element_event_frames, methods=["GET"]),
    Route(API + "/eventframes", event_frame_by_path, methods=["GET"]),
    Route(API + "/eventframes/{webId}", get_event_frame, methods=["GET"]),
    Route(API + "/eventframes/{webId}/attributes", event_frame_attributes, methods=["GET"]),
    Route(API + "/eventframes/{webId}/eventframes", child_event_frames, methods=["GET"]),
    Route(API + "/eventframes/{webId}/referencedelements", referenced_elements, methods=["GET"]),
]
ADMIN_ROUTES: list[BaseRoute] = [
    Route("/admin/eventframes/{webId}/close", admin_close_event_frame, methods=["POST"]),
]
