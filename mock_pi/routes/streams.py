"""Stream controller: recorded, interpolated, interpolatedattimes, plot, summary, value, end, recordedattime,
recordedattimes, and value writes.

A stream WebId is a PI point or an AF attribute with a PI Point data reference; an attribute with no data reference
is not a stream (409), though `value` answers its static value as AFAttribute.GetValue does. Reads go through
`mock_pi.engine`, writes through `mock_pi.writes`; parameters and helpers shared with stream sets are in
`stream_common.py`.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.archive import Values
from mock_pi.engine import Engine, end_value, recorded_at_time, recorded_at_times, too_many
from mock_pi.http import PIHTTPError, Query, json_response
from mock_pi.metrics import count_values
from mock_pi.routes.af_common import static_timed_value
from mock_pi.routes.stream_common import (
    boundary_param,
    desired_units,
    include_filtered_param,
    interval_param,
    json_body,
    max_count_param,
    raw_json,
    reject_unsupported,
    resolve,
    state_of,
    static_attribute,
    summary_body,
    time_param,
    time_range,
    times_param,
    value_at,
    write_options,
)
from mock_pi.serialize import FieldSelector, timed_value_fragments, timed_values_text
from mock_pi.state import StreamSource
from mock_pi.writes import apply_write, parse_event

# --- responses -----------------------------------------------------------------------------------------------------


def values_envelope(values: Values, src: StreamSource, selector: FieldSelector) -> bytes:
    """{"Links":{},"Items":[…],"UnitsAbbreviation":"…"} built from column fragments."""
    parts: list[str] = []
    if selector.keeps(("Links",)):
        parts.append('"Links":{}')
    if selector.keeps(("Items",)):
        fields = selector.value_fields(("Items",))
        parts.append('"Items":' + timed_values_text(values, src.point, fields, src.units))
    if selector.keeps(("UnitsAbbreviation",)):
        parts.append('"UnitsAbbreviation":' + orjson.dumps(src.units).decode())
    count_values(len(values))
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def single_value(values: Values, src: StreamSource, selector: FieldSelector) -> Response:
    fields = selector.value_fields(())
    frags = timed_value_fragments(values.take(slice(0, 1)), src.point, fields, src.units)
    count_values(1)
    return raw_json(frags[0].encode("utf-8"))


# --- handlers ------------------------------------------------------------------------------------------------------


def get_recorded(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    max_count = max_count_param(q)
    limit = state.config.max_returned_items
    vals = Engine(state).recorded(src.point, start, end, boundary_param(q), min(max_count, limit + 1))
    if len(vals) > limit:
        raise too_many(limit)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_interpolated(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    interval = interval_param(q, "interval", "1h")
    assert interval is not None
    engine = Engine(state)
    times = engine.interpolated_times(start, end, interval, state.config.max_returned_items)
    vals = engine.interpolated(src.point, times)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_interpolated_at_times(request: Request) -> Response:
    """GetInterpolatedAtTimes: an interpolated value at each requested `time`, sorted by `sortOrder`."""
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    include_filtered_param(q)
    src = resolve(state, request.path_params["web_id"])
    desired_units(state, src, q)
    times = times_param(q, state.clock.now_us(), state.config.max_returned_items)
    vals = Engine(state).interpolated(src.point, times)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_recorded_at_times(request: Request) -> Response:
    """GetRecordedAtTimes: the recorded value `retrievalMode` picks at each requested `time`, sorted by `sortOrder`."""
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    desired_units(state, src, q)
    times = times_param(q, state.clock.now_us(), state.config.max_returned_items)
    vals = recorded_at_times(state, src, times, q.get("retrievalMode") or "Auto")
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_plot(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    start, end = time_range(q, state.clock.now_us(), src)
    intervals = q.get_int("intervals", 24)
    if intervals < 1:
        raise PIHTTPError(400, f"The intervals '{intervals}' must be at least 1.")
    if 5 * intervals + 2 > state.config.max_returned_items:
        raise too_many(state.config.max_returned_items)
    vals = Engine(state).plot(src.point, start, end, intervals)
    return raw_json(values_envelope(vals, src, FieldSelector(q.get("selectedFields"))))


def get_summary(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    src = resolve(state, request.path_params["web_id"])
    body = {"Links": {}, "Items": summary_body(state, src, q)}
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


def get_value(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    attr = static_attribute(state, request.path_params["web_id"])
    if attr is not None:
        # Not a stream, but AFAttribute.GetValue answers a static value at any time: the same as attributes/…/value.
        if q.get("time"):
            time_param(q, "time", "*", state.clock.now_us())
        return json_response(FieldSelector(q.get("selectedFields")).apply(static_timed_value(attr)))
    src = resolve(state, request.path_params["web_id"])
    return single_value(value_at(state, src, q), src, FieldSelector(q.get("selectedFields")))


def get_end(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    return single_value(end_value(state, src), src, FieldSelector(q.get("selectedFields")))


def get_recorded_at_time(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"])
    if not q.get("time"):
        raise PIHTTPError(400, "The 'time' parameter is required.")
    at = time_param(q, "time", "*", state.clock.now_us())
    vals = recorded_at_time(state, src, at, q.get("retrievalMode") or "Auto")
    return single_value(vals, src, FieldSelector(q.get("selectedFields")))


async def post_value(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"], write=True)
    option, status = write_options(q)
    body = await json_body(request)
    ts, event = parse_event(src.point, body, state.clock.now_us(), "Value")
    apply_write(state, src.point, ts, event, option)
    return Response(status_code=status)


async def post_recorded(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    src = resolve(state, request.path_params["web_id"], write=True)
    option, status = write_options(q)
    body = await json_body(request)
    if not isinstance(body, list):
        raise PIHTTPError(400, "The request body must be a JSON array of TimedValues.")
    now = state.clock.now_us()
    events = [parse_event(src.point, item, now, f"Item {i}") for i, item in enumerate(body)]
    for ts, event in events:
        apply_write(state, src.point, ts, event, option)
    return Response(status_code=status)


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/streams/{web_id}/recorded", get_recorded, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/recorded", post_recorded, methods=["POST"]),
    Route("/piwebapi/streams/{web_id}/interpolated", get_interpolated, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/interpolatedattimes", get_interpolated_at_times, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/plot", get_plot, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/summary", get_summary, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/value", get_value, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/value", post_value, methods=["POST"]),
    Route("/piwebapi/streams/{web_id}/end", get_end, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/recordedattime", get_recorded_at_time, methods=["GET"]),
    Route("/piwebapi/streams/{web_id}/recordedattimes", get_recorded_at_times, methods=["GET"]),
]
