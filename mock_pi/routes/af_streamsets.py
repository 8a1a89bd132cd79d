"""Stream sets by parent: GET /streamsets/{webId}/recorded|interpolated|interpolatedattimes|plot|summary|value|end|
recordedattime|recordedattimes for an element, event frame or attribute, i.e. the parent's attributes that have a PI
Point data reference, as one stream set.

The parent's attribute filters (nameFilter, categoryName, templateName, searchFullHierarchy, showExcluded,
showHidden, sortField/sortOrder) are applied here; the values come from the core's ad-hoc stream-set handlers, so
both flavours share one time-series engine. In the …AtTimes calls `sortOrder` orders the times, and the attributes
keep their order. Event-frame attributes default to the frame's own time range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.af import Attribute, Element, EventFrame
from mock_pi.http import PIHTTPError, Query, base_url, error_response, json_response
from mock_pi.pitime import format_us
from mock_pi.routes import streamsets
from mock_pi.routes.af_common import API, Ctx, filter_attributes, sort_items

# Parameters that select the parent's attributes; everything else is passed on to the stream-set engine.
_PARENT_PARAMS = frozenset(
    ("webid", "namefilter", "categoryname", "templatename", "searchfullhierarchy", "showexcluded", "showhidden",
     "sortfield", "sortorder", "valuetype")
)  # fmt: skip


def _streams_of(ctx: Ctx, *, sort: bool = True) -> tuple[Any, list[Attribute]]:
    web_id = ctx.path_param()
    parent = ctx.af.resolve(web_id)
    full = ctx.q.get_bool("searchFullHierarchy", False)
    visible = isinstance(parent, Attribute | Element) or (
        isinstance(parent, EventFrame) and parent.start_us <= ctx.now_us
    )
    if not visible:
        raise PIHTTPError(404, f"The specified element, event frame or attribute '{web_id}' was not found.")
    attrs = ctx.af.all_attributes(parent, full_hierarchy=full)
    chosen = [a for a in filter_attributes(ctx, attrs) if a.point is not None]
    if sort and (ctx.q.get("sortField") is not None or ctx.q.get("sortOrder") is not None):
        sort_items(ctx, chosen, {"Name": lambda a: a.name.lower()})
    return parent, chosen


def _by_parent(
    handler: Callable[[Request], Response], kind: str, *, at_times: bool = False
) -> Callable[[Request], Any]:
    """A by-parent endpoint delegating to the ad-hoc stream-set handler with the chosen attributes as webIds; for
    the …AtTimes calls (`at_times`) `sortOrder` goes to the handler, where it orders the times."""
    parent_params = _PARENT_PARAMS - {"sortorder"} if at_times else _PARENT_PARAMS

    def run(request: Request) -> Response:
        state = request.app.state.emulator
        q = Query.of(request)
        ctx = Ctx(request, state, state.af, state.clock.now_us(), base_url(request), q)
        try:
            parent, attrs = _streams_of(ctx, sort=not at_times)
        except PIHTTPError as exc:
            return error_response(exc.status, *exc.messages, headers=exc.headers)
        if not attrs:
            return json_response({"Links": {}, "Items": []})
        params = [(k, v) for k, v in request.query_params.multi_items() if k.lower() not in parent_params]
        if kind == "value" and isinstance(parent, EventFrame) and q.get("time") is None:
            # An event frame's time context is its end: the value an analysis captured when the frame closed.
            end = state.af.end_us(parent, ctx.now_us)
            params.append(("time", format_us(ctx.now_us if end is None else end)))
        params.extend(("webId", a.web_id) for a in attrs)
        scope = dict(request.scope)
        scope["query_string"] = urlencode(params).encode("latin-1")
        try:
            return handler(Request(scope, request.receive))
        except PIHTTPError as exc:
            return error_response(exc.status, *exc.messages, headers=exc.headers)

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(run, request)

    endpoint.__name__ = f"parent_streamset_{kind}"
    return endpoint


ROUTES: list[BaseRoute] = [
    Route(
        API + "/streamsets/{webId}/recorded", _by_parent(streamsets.get_recorded, "recorded"), methods=["GET"]
    ),
    Route(
        API + "/streamsets/{webId}/interpolated",
        _by_parent(streamsets.get_interpolated, "interpolated"),
        methods=["GET"],
    ),
    Route(
        API + "/streamsets/{webId}/interpolatedattimes",
        _by_parent(streamsets.get_interpolated_at_times, "interpolatedattimes", at_times=True),
        methods=["GET"],
    ),
    Route(API + "/streamsets/{webId}/plot", _by_parent(streamsets.get_plot, "plot"), methods=["GET"]),
    Route(
        API + "/streamsets/{webId}/summary", _by_parent(streamsets.get_summary, "summary"), methods=["GET"]
    ),
    Route(API + "/streamsets/{webId}/value", _by_parent(streamsets.get_value, "value"), methods=["GET"]),
    Route(API + "/streamsets/{webId}/end", _by_parent(streamsets.get_end, "end"), methods=["GET"]),
    Route(
        API + "/streamsets/{webId}/recordedattime",
        _by_parent(streamsets.get_recorded_at_time, "recordedattime"),
        methods=["GET"],
    ),
    Route(
        API + "/streamsets/{webId}/recordedattimes",
        _by_parent(streamsets.get_recorded_at_times, "recordedattimes", at_times=True),
        methods=["GET"],
    ),
]
