"""StreamSet controller, ad hoc flavour: /streamsets/{recorded,interpolated,interpolatedattimes,plot,summary,value,end,
recordedattime,recordedattimes}?webId=A&webId=B, plus POST /streamsets/value and /streamsets/recorded.

Limits apply to the whole call: the items summed over all streams (after per-stream maxCount) must stay within
max_returned_items, as PI's MaxReturnedItemsPerCall.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.archive import Values
from mock_pi.engine import Engine, end_value, recorded_at_time, recorded_at_times, too_many
from mock_pi.http import PIHTTPError, Query, json_response
from mock_pi.metrics import count_values
from mock_pi.routes.stream_common import (
    boundary_param,
    calculation_basis,
    include_filtered_param,
    interval_param,
    json_body,
    max_count_param,
    raw_json,
    reject_unsupported,
    resolve,
    state_of,
    stream_links,
    summary_body,
    summary_duration,
    summary_types,
    time_param,
    time_range,
    time_type_param,
    times_param,
    value_at,
    write_options,
)
from mock_pi.serialize import FieldSelector, timed_value_fragments, timed_values_text, timed_values_texts
from mock_pi.state import EmulatorState, StreamSource
from mock_pi.summaries import EVENT_BASES, summary_intervals, summary_value
from mock_pi.writes import apply_write, parse_event


def sources(request: Request, q: Query) -> list[StreamSource]:
    state = state_of(request)
    web_ids = q.get_all("webId")
    if not web_ids:
        raise PIHTTPError(400, "At least one 'webId' parameter is required.")
    srcs = [resolve(state, w) for w in web_ids]
    if (q.get("sortField") or "").lower() == "name":
        srcs.sort(key=lambda s: s.name.lower(), reverse=(q.get("sortOrder") or "").lower() == "descending")
    elif q.get("sortField"):
        raise PIHTTPError(400, f"The sortField '{q.get('sortField')}' is not valid; only 'Name' is sortable.")
    return srcs


def _unsorted_sources(request: Request, q: Query) -> list[StreamSource]:
    """The streams of an …AtTimes call in request order: there `sortOrder` orders the times, not the streams."""
    web_ids = q.get_all("webId")
    if not web_ids:
        raise PIHTTPError(400, "At least one 'webId' parameter is required.")
    return [resolve(state_of(request), w) for w in web_ids]


def _header(request: Request, src: StreamSource, selector: FieldSelector) -> dict[str, Any]:
    header = {"WebId": src.web_id, "Name": src.name, "Path": src.path, "Links": stream_links(request, src)}
    return {k: v for k, v in header.items() if selector.keeps(("Items", k))}


def _item_text(
    request: Request, src: StreamSource, selector: FieldSelector, key: str, body: str | None
) -> str:
    parts = []
    header = _header(request, src, selector)
    if header:
        parts.append(orjson.dumps(header).decode()[1:-1])
    if body is not None and selector.keeps(("Items", key)):
        parts.append(f'"{key}":{body}')
    if selector.keeps(("Items", "UnitsAbbreviation")):
        parts.append('"UnitsAbbreviation":' + orjson.dumps(src.units).decode())
    return "{" + ",".join(parts) + "}"


def _envelope(selector: FieldSelector, items: list[str]) -> Response:
    parts = []
    if selector.keeps(("Links",)):
        parts.append('"Links":{}')
    if selector.keeps(("Items",)):
        parts.append('"Items":[' + ",".join(items) + "]")
    return raw_json(("{" + ",".join(parts) + "}").encode("utf-8"))


def _series_response(
    request: Request,
    q: Query,
    produce: Callable[[StreamSource, int], Values],
    *,
    max_items: int,
    srcs: list[StreamSource] | None = None,
) -> Response:
    """Run `produce(src, cap)` per stream; fail as soon as the running total passes the per-call limit."""
    selector = FieldSelector(q.get("selectedFields"))
    fields = selector.value_fields(("Items", "Items"))
    items: list[str] = []
    total = 0
    for src in sources(request, q) if srcs is None else srcs:
        vals = produce(src, max_items - total + 1)
        total += len(vals)
        if total > max_items:
            raise too_many(max_items)
        body = timed_values_text(vals, src.point, fields, src.units)
        items.append(_item_text(request, src, selector, "Items", body))
    count_values(total)
    return _envelope(selector, items)


def get_recorded(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    now = state.clock.now_us()
    max_count = max_count_param(q)
    boundary = boundary_param(q)
    engine = Engine(state)

    def produce(src: StreamSource, cap: int) -> Values:
        start, end = time_range(q, now, src)
        return engine.recorded(src.point, start, end, boundary, min(max_count, cap))

    srcs = sources(request, q)
    if boundary.lower() == "inside":
        reads = [(src, *time_range(q, now, src)) for src in srcs]
        if all(start <= end for _, start, end in reads):
            return _recorded_together(request, q, reads, max_count)
    return _series_response(request, q, produce, max_items=state.config.max_returned_items, srcs=srcs)


def _recorded_together(
    request: Request, q: Query, reads: list[tuple[StreamSource, int, int]], max_count: int
) -> Response:
    """Ascending Inside reads (the common case) of all streams at once: one generation pass and one column-wise
    serialisation for the call instead of one per stream; the same body as `_series_response` gives."""
    state = state_of(request)
    limit = state.config.max_returned_items
    values, offsets = state.archive.recorded_many(
        [(src.point, start, end, min(max_count, limit + 1)) for src, start, end in reads], stop_after=limit
    )
    if len(values) > limit:
        raise too_many(limit)
    selector = FieldSelector(q.get("selectedFields"))
    srcs = [src for src, _, _ in reads]
    fields = selector.value_fields(("Items", "Items"))
    bodies = timed_values_texts(values, offsets, [s.point for s in srcs], [s.units for s in srcs], fields)
    count_values(len(values))
    return _envelope(
        selector, [_item_text(request, s, selector, "Items", b) for s, b in zip(srcs, bodies, strict=True)]
    )


def get_interpolated(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    now = state.clock.now_us()
    interval = interval_param(q, "interval", "1h")
    assert interval is not None
    engine = Engine(state)
    limit = state.config.max_returned_items

    def produce(src: StreamSource, cap: int) -> Values:
        start, end = time_range(q, now, src)
        times = engine.interpolated_times(start, end, interval, min(cap, limit))
        return engine.interpolated(src.point, times)

    return _series_response(request, q, produce, max_items=limit)


def get_interpolated_at_times(request: Request) -> Response:
    """GetInterpolatedAtTimesAdHoc: each stream's interpolated values at the requested times (see streams.py)."""
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    include_filtered_param(q)
    srcs = _unsorted_sources(request, q)
    limit = state.config.max_returned_items
    times = times_param(q, state.clock.now_us(), limit)
    engine = Engine(state)
    return _series_response(
        request, q, lambda src, cap: engine.interpolated(src.point, times), max_items=limit, srcs=srcs
    )


def get_recorded_at_times(request: Request) -> Response:
    """GetRecordedAtTimesAdHoc: each stream's recorded values at the requested times, by `retrievalMode`."""
    state = state_of(request)
    q = Query.of(request)
    srcs = _unsorted_sources(request, q)
    limit = state.config.max_returned_items
    times = times_param(q, state.clock.now_us(), limit)
    mode = q.get("retrievalMode") or "Auto"
    return _series_response(
        request, q, lambda src, cap: recorded_at_times(state, src, times, mode), max_items=limit, srcs=srcs
    )


def get_plot(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    now = state.clock.now_us()
    intervals = q.get_int("intervals", 24)
    if intervals < 1:
        raise PIHTTPError(400, f"The intervals '{intervals}' must be at least 1.")
    engine = Engine(state)

    def produce(src: StreamSource, cap: int) -> Values:
        if 5 * intervals + 2 > cap:
            raise too_many(state.config.max_returned_items)
        start, end = time_range(q, now, src)
        return engine.plot(src.point, start, end, intervals)

    return _series_response(request, q, produce, max_items=state.config.max_returned_items)


def get_summary(request: Request) -> Response:
    state = state_of(request)
    q = Query.of(request)
    reject_unsupported(q)
    selector = FieldSelector(q.get("selectedFields"))
    srcs = sources(request, q)
    counted = _counts_together(state, q, srcs)
    items = []
    total = 0
    for i, src in enumerate(srcs):
        summaries = summary_body(state, src, q) if counted is None else counted[i]
        total += len(summaries)
        if total > state.config.max_returned_items:
            raise too_many(state.config.max_returned_items)
        items.append({"WebId": src.web_id, "Name": src.name, "Path": src.path, "Links": stream_links(request, src),
                      "Items": summaries})  # fmt: skip
    return json_response(selector.apply({"Links": {}, "Items": items}))


def _counts_together(
    state: EmulatorState, q: Query, srcs: list[StreamSource]
) -> list[list[dict[str, Any]]] | None:
    """summaryType=Count over one interval with an event-weighted basis (the completeness check's question) for all
    streams in one pass, by the same boundary rules as the per-stream path; None when the request asks for anything
    else, which takes the per-stream path (and its errors)."""
    if summary_types(q) != ["Count"] or q.get("summaryDuration"):
        return None
    basis = calculation_basis(q)
    if basis not in EVENT_BASES:
        return None
    time_type = time_type_param(q)
    summary_duration(q)  # validates sampleType / sampleInterval
    now = state.clock.now_us()
    intervals = [summary_intervals(*time_range(q, now, src), None, basis)[0] for src in srcs]
    engine = Engine(state)
    counts = engine.counts([(src.point, iv) for src, iv in zip(srcs, intervals, strict=True)])
    return [
        [{"Type": "Count", "Value": summary_value(src, "Count", {"count": c}, iv.lo, iv.hi, time_type)}]
        for src, iv, c in zip(srcs, intervals, counts, strict=True)
    ]


def _single_values(
    request: Request, pick: Callable[[EmulatorState, StreamSource, Query], Values]
) -> Response:
    state = state_of(request)
    q = Query.of(request)
    selector = FieldSelector(q.get("selectedFields"))
    fields = selector.value_fields(("Items", "Value"))
    items = []
    for src in sources(request, q):
        vals = pick(state, src, q)
        frag = timed_value_fragments(vals.take(slice(0, 1)), src.point, fields, src.units)[0]
        items.append(_item_text(request, src, selector, "Value", frag))
    count_values(len(items))
    return _envelope(selector, items)


def get_value(request: Request) -> Response:
    return _single_values(request, value_at)


def get_end(request: Request) -> Response:
    return _single_values(request, lambda state, src, q: end_value(state, src))


def get_recorded_at_time(request: Request) -> Response:
    q = Query.of(request)
    if not q.get("time"):
        raise PIHTTPError(400, "The 'time' parameter is required.")

    def pick(state: EmulatorState, src: StreamSource, q: Query) -> Values:
        at = time_param(q, "time", "*", state.clock.now_us())
        return recorded_at_time(state, src, at, q.get("retrievalMode") or "Auto")

    return _single_values(request, pick)


async def _post(request: Request, many: bool) -> Response:
    """Body: [{"WebId": …, "Value": TimedValue}] (value) or [{"WebId": …, "Items": [TimedValue…]}] (recorded)."""
    state = state_of(request)
    q = Query.of(request)
    option, status = write_options(q)
    body = await json_body(request)
    if not isinstance(body, list):
        raise PIHTTPError(400, "The request body must be a JSON array of stream objects with a WebId.")
    now = state.clock.now_us()
    writes = []
    for i, stream in enumerate(body):
        if not isinstance(stream, dict) or not stream.get("WebId"):
            raise PIHTTPError(400, f"Stream {i}: a 'WebId' is required.")
        src = resolve(state, str(stream["WebId"]), write=True)
        values = stream.get("Items") if many else [stream.get("Value")]
        if not isinstance(values, list):
            raise PIHTTPError(400, f"Stream {i}: 'Items' must be an array of TimedValues.")
        for j, item in enumerate(values):
            writes.append((src.point, *parse_event(src.point, item, now, f"Stream {i} item {j}")))
    for point, ts, event in writes:
        apply_write(state, point, ts, event, option)
    return Response(status_code=status)


async def post_value(request: Request) -> Response:
    return await _post(request, many=False)


async def post_recorded(request: Request) -> Response:
    return await _post(request, many=True)


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/streamsets/recorded", get_recorded, methods=["GET"]),
    Route("/piwebapi/streamsets/recorded", post_recorded, methods=["POST"]),
    Route("/piwebapi/streamsets/interpolated", get_interpolated, methods=["GET"]),
    Route("/piwebapi/streamsets/interpolatedattimes", get_interpolated_at_times, methods=["GET"]),
    Route("/piwebapi/streamsets/plot", get_plot, methods=["GET"]),
    Route("/piwebapi/streamsets/summary", get_summary, methods=["GET"]),
    Route("/piwebapi/streamsets/value", get_value, methods=["GET"]),
    Route("/piwebapi/streamsets/value", post_value, methods=["POST"]),
    Route("/piwebapi/streamsets/end", get_end, methods=["GET"]),
    Route("/piwebapi/streamsets/recordedattime", get_recorded_at_time, methods=["GET"]),
    Route("/piwebapi/streamsets/recordedattimes", get_recorded_at_times, methods=["GET"]),
]
