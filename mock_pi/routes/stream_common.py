"""Shared machinery of the stream and stream-set controllers: stream lookup, query parameters (times, intervals,
boundary types, summary options, write options) with PI's 400 messages, and small response helpers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mock_pi.af import Attribute
from mock_pi.archive import Values
from mock_pi.engine import Engine, no_data, too_many
from mock_pi.http import JSON_TYPE, PIHTTPError, Query, base_url
from mock_pi.pitime import parse_interval, parse_time
from mock_pi.state import EmulatorState, StreamSource
from mock_pi.summaries import EVENT_BASES, NON_NUMERIC_SUMMARIES, SUMMARY_TYPES, TIME_BASES
from mock_pi.writes import UPDATE_OPTIONS

DEFAULT_START = "*-1d"
DEFAULT_END = "*"
TIME_TYPES = ("auto", "earliesttime", "mostrecenttime")
SAMPLE_TYPES = ("expressionrecordedvalues", "interval")
_WALL_CLOCK_UNITS = ("d", "day", "days", "w", "wk", "week", "weeks")
_CALENDAR_UNITS = ("mo", "month", "months", "y", "yr", "year", "years")


def state_of(request: Request) -> EmulatorState:
    return request.app.state.emulator


def resolve(state: EmulatorState, web_id: str, *, write: bool = False) -> StreamSource:
    """The stream a WebId names: 404 when unknown; an AF attribute with no data reference is not a stream (PI Web
    API reference, topics/stream.html), so reading it as one is a 409 (the data reference does not support the
    method), and writing it (an AF change) a 400 as other unimplemented AF writes."""
    src = state.stream_source(web_id)
    if src is not None:
        return src
    attr = static_attribute(state, web_id)
    if attr is None:
        raise PIHTTPError(
            404, f"Unknown or invalid WebID '{web_id}': no PI point or PI Point attribute found."
        )
    if write:
        raise PIHTTPError(
            400,
            f"The attribute '{attr.path}' has no data reference: writing its value changes the AF model, which "
            "this emulator does not implement.",
        )
    raise PIHTTPError(
        409,
        f"The attribute '{attr.path}' has no data reference, so it is not a stream and does not support this "
        "method; read its static value with attributes/{webId}/value.",
    )


def static_attribute(state: EmulatorState, web_id: str) -> Attribute | None:
    """The AF attribute a WebId names when it has no data reference (a static value), else None."""
    attr = state.af.attribute(web_id)
    return attr if attr is not None and attr.point is None else None


def time_param(q: Query, name: str, default: str, now_us: int) -> int:
    raw = q.get(name)
    text = default if raw is None or raw == "" else raw
    try:
        return parse_time(text, now_us, q.get("timeZone") or "UTC")
    except ValueError:
        raise PIHTTPError(
            400, f"The time string '{text}' given for '{name}' is not a valid PI time."
        ) from None


def times_param(q: Query, now_us: int, limit: int) -> list[int]:
    """The repeated `time` parameter of the …AtTimes calls (at least one; an empty one is '*'), in the order
    `sortOrder` asks (Ascending by default); duplicates are kept, one value each."""
    raw = q.get_all("time")
    if not raw:
        raise PIHTTPError(400, "At least one 'time' parameter is required.")
    if len(raw) > limit:
        raise too_many(limit)
    zone = q.get("timeZone") or "UTC"
    times = []
    for text in raw:
        try:
            times.append(parse_time(text or "*", now_us, zone))
        except ValueError:
            raise PIHTTPError(
                400, f"The time string '{text}' given for 'time' is not a valid PI time."
            ) from None
    return sorted(times, reverse=sort_order_param(q) == "Descending")


def sort_order_param(q: Query) -> str:
    order = q.get("sortOrder") or "Ascending"
    for option in ("Ascending", "Descending"):
        if order.lower() == option.lower():
            return option
    raise PIHTTPError(400, f"The sortOrder '{order}' is not valid (use Ascending or Descending).")


def desired_units(state: EmulatorState, src: StreamSource, q: Query) -> None:
    """`desiredUnits`: PI forbids it on a point (points have no unit of measure); on an attribute the emulator
    accepts the attribute's own units (abbreviation or name) and answers 400 for a conversion it does not do."""
    raw = q.get("desiredUnits")
    if not raw:
        return
    if is_point_stream(src):
        raise PIHTTPError(
            400,
            f"desiredUnits may not be specified for '{src.name}': it is a PI point, which has no unit of measure.",
        )
    attr = state.af.attribute(src.web_id)
    own = {src.units.lower()} | ({attr.units_name.lower()} if attr is not None and attr.units_name else set())
    if raw.strip().lower() not in own:
        raise PIHTTPError(
            400,
            f"desiredUnits '{raw}': unit conversion is not implemented by this emulator; leave it out or ask for "
            f"the attribute's own units '{src.units}'.",
        )


def include_filtered_param(q: Query) -> None:
    """`includeFilteredValues` only matters with a filterExpression (refused); it is validated."""
    q.get_bool("includeFilteredValues", False)


def time_range(q: Query, now_us: int, src: StreamSource | None = None) -> tuple[int, int]:
    """startTime/endTime with PI defaults ('*-1d', '*'); an event-frame attribute defaults to its frame's range."""
    if src is not None and src.default_range is not None:
        start = time_param(q, "startTime", "", now_us) if q.get("startTime") else src.default_range[0]
        end = time_param(q, "endTime", "", now_us) if q.get("endTime") else src.default_range[1]
        return start, end
    return time_param(q, "startTime", DEFAULT_START, now_us), time_param(q, "endTime", DEFAULT_END, now_us)


def interval_param(q: Query, name: str, default: str | None) -> int | None:
    raw = q.get(name) or default
    if raw is None:
        return None
    try:
        value = parse_interval(raw)
    except ValueError:
        raise PIHTTPError(400, f"The interval '{raw}' given for '{name}' is not a valid time span.") from None
    if value <= 0:
        raise PIHTTPError(400, f"The interval '{raw}' given for '{name}' must be positive.")
    return value


def reject_unsupported(q: Query) -> None:
    if q.get("filterExpression"):
        raise PIHTTPError(
            400, "filterExpression is not supported by this emulator; filter on the client side."
        )


def summary_types(q: Query) -> list[str]:
    raw = q.get_all("summaryType") or ["Total"]
    out: list[str] = []
    canon = {t.lower(): t for t in SUMMARY_TYPES}
    for item in raw:
        for name in item.split(","):
            low = name.strip().lower()
            if low == "all":
                out.extend(SUMMARY_TYPES)
            elif low == "allfornonnumeric":
                out.extend(NON_NUMERIC_SUMMARIES)
            elif low in canon:
                out.append(canon[low])
            else:
                raise PIHTTPError(
                    400, f"The summaryType '{name}' is not valid; use one of {', '.join(SUMMARY_TYPES)}."
                )
    return list(dict.fromkeys(out))


def calculation_basis(q: Query) -> str:
    basis = (q.get("calculationBasis") or "TimeWeighted").lower()
    if basis not in TIME_BASES + EVENT_BASES:
        raise PIHTTPError(400, f"The calculationBasis '{q.get('calculationBasis')}' is not valid.")
    return basis


def time_type_param(q: Query) -> str:
    time_type = q.get("timeType") or "Auto"
    if time_type.lower() not in TIME_TYPES:
        raise PIHTTPError(
            400, f"The timeType '{time_type}' is not valid (use Auto, EarliestTime or MostRecentTime)."
        )
    return time_type


def summary_duration(q: Query) -> int | None:
    """summaryDuration (either sign; a negative one lays intervals back from the latest bound), with sampleType and
    sampleInterval validated: they only say how a filterExpression is sampled, which this emulator refuses."""
    sample_type = q.get("sampleType") or "ExpressionRecordedValues"
    if sample_type.lower() not in SAMPLE_TYPES:
        raise PIHTTPError(
            400, f"The sampleType '{sample_type}' is not valid (use ExpressionRecordedValues or Interval)."
        )
    if q.get("sampleInterval"):
        interval_param(q, "sampleInterval", None)
    raw = q.get("summaryDuration")
    if not raw:
        return None
    unit = raw.strip().lstrip("+-").lstrip("0123456789. ").lower()
    if unit in _CALENDAR_UNITS:
        raise PIHTTPError(
            400,
            f"summaryDuration '{raw}': calendar durations (months, years) are not implemented by this emulator; "
            "request days or hours.",
        )
    try:
        value = parse_interval(raw)
    except ValueError:
        raise PIHTTPError(
            400, f"The interval '{raw}' given for 'summaryDuration' is not a valid time span."
        ) from None
    if value == 0:
        raise PIHTTPError(400, f"The interval '{raw}' given for 'summaryDuration' must not be zero.")
    zone = q.get("timeZone") or "UTC"
    if unit in _WALL_CLOCK_UNITS and zone.upper() not in ("UTC", "GMT", "Z"):
        # PI lays day and week durations by wall-clock rules in the request's time zone (DST days are 23 or 25 h).
        raise PIHTTPError(
            400,
            f"summaryDuration '{raw}' in timeZone '{zone}' (wall-clock days) is not implemented by this emulator; "
            "use hours (e.g. '24h') or timeZone=UTC.",
        )
    return value


def boundary_param(q: Query) -> str:
    boundary = q.get("boundaryType") or "Inside"
    if boundary.lower() not in ("inside", "outside", "interpolated"):
        raise PIHTTPError(
            400, f"The boundaryType '{boundary}' is not valid (use Inside, Outside or Interpolated)."
        )
    return boundary


def max_count_param(q: Query, default: int = 1000) -> int:
    n = q.get_int("maxCount", default)
    if n < 1:
        raise PIHTTPError(400, f"The maxCount '{n}' must be at least 1.")
    return n


def write_options(q: Query) -> tuple[str, int]:
    option = (q.get("updateOption") or "Replace").lower()
    if option not in UPDATE_OPTIONS:
        raise PIHTTPError(400, f"The updateOption '{q.get('updateOption')}' is not valid.")
    buffer = (q.get("bufferOption") or "BufferIfPossible").lower()
    if buffer not in ("donotbuffer", "bufferifpossible", "buffer"):
        raise PIHTTPError(400, f"The bufferOption '{q.get('bufferOption')}' is not valid.")
    # A buffered write is accepted for later (202); an unbuffered one is done when we answer (204).
    return option, 204 if buffer == "donotbuffer" else 202


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PIHTTPError(400, f"The request body is not valid JSON: {exc}.") from None


def raw_json(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type=JSON_TYPE)


def value_at(state: EmulatorState, src: StreamSource, q: Query) -> Values:
    """GetValue: the snapshot by default, the interpolated value at `time` when given."""
    now = state.clock.now_us()
    if q.get("time"):
        return state.archive.interpolate(src.point, [time_param(q, "time", "*", now)])
    if src.default_range is not None:
        # An event-frame attribute's time context is the frame: its value is the one at the frame's end.
        return state.archive.interpolate(src.point, [min(src.default_range[1], now)])
    snap = state.archive.snapshot(src.point)
    return snap if len(snap) else no_data(src.point, now)


def summary_body(state: EmulatorState, src: StreamSource, q: Query) -> list[dict[str, Any]]:
    start, end = time_range(q, state.clock.now_us(), src)
    return Engine(state).summary(
        src, start, end, summary_types(q), calculation_basis(q), summary_duration(q), time_type_param(q)
    )


def is_point_stream(src: StreamSource) -> bool:
    return src.point.web_id == src.web_id or src.web_id.startswith(("I1DP", "P1DP"))


def stream_links(request: Request, src: StreamSource) -> dict[str, str]:
    base = base_url(request)
    kind = "points" if is_point_stream(src) else "attributes"
    return {"Source": f"{base}/{kind}/{src.web_id}"}
