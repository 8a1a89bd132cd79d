"""Value writes: a TimedValue body checked against the point type (`parse_event`, PI's 400s for bad values) and
applied to the archive with PI's updateOption semantics (`apply_write`)."""

from __future__ import annotations

import math
from typing import Any

from mock_pi.archive import Event
from mock_pi.catalog import SYSTEM_STATES, Point
from mock_pi.http import PIHTTPError
from mock_pi.pitime import format_us, parse_time
from mock_pi.state import EmulatorState


def parse_event(point: Point, item: Any, now_us: int, where: str) -> tuple[int, Event]:
    """A TimedValue body → (timestamp, Event), validated against the point type; PIHTTPError(400) otherwise."""
    if not isinstance(item, dict):
        raise PIHTTPError(400, f"{where}: a TimedValue object is expected, got {type(item).__name__}.")
    lowered = {str(k).lower(): v for k, v in item.items()}
    try:
        ts = parse_time(str(lowered.get("timestamp") or "*"), now_us)
    except ValueError:
        raise PIHTTPError(
            400, f"{where}: the Timestamp '{lowered.get('timestamp')}' is not a valid time."
        ) from None
    flags = {
        "good": bool(lowered.get("good", True)),
        "questionable": bool(lowered.get("questionable", False)),
        "substituted": bool(lowered.get("substituted", False)),
        "annotated": bool(lowered.get("annotated", False)),
    }
    if "value" not in lowered:
        raise PIHTTPError(400, f"{where}: the Value is missing.")
    raw = lowered["value"]
    system_code = _system_code(raw)
    if system_code is not None:
        return ts, Event(digital_code=system_code, is_system=True, good=False, **_minus_good(flags))
    ptype = point.point_type
    if point.is_numeric:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(float(raw)):
            raise PIHTTPError(
                400, f"{where}: Value {raw!r} is not a number, as {ptype} point '{point.name}' needs."
            )
        value = float(round(raw)) if point.is_integer else float(raw)
        return ts, Event(value=value, **flags)
    if ptype == "Digital" and point.digital_set is not None:
        code = _digital_code(point, raw)
        if code is None:
            states = ", ".join(name for name, _ in point.digital_set.states)
            raise PIHTTPError(
                400, f"{where}: Value {raw!r} is not a state of set '{point.digital_set.name}' ({states})."
            )
        return ts, Event(value=float(code), digital_code=code, **flags)
    if ptype == "Timestamp":
        try:
            text = format_us(parse_time(str(raw), now_us))
        except ValueError:
            raise PIHTTPError(400, f"{where}: Value {raw!r} is not a timestamp.") from None
        return ts, Event(text=text, **flags)
    return ts, Event(text=str(raw), **flags)


def _minus_good(flags: dict[str, bool]) -> dict[str, bool]:
    return {k: v for k, v in flags.items() if k != "good"}


def _system_code(raw: Any) -> int | None:
    if isinstance(raw, dict):
        name = raw.get("Name")
        if raw.get("IsSystem") or (isinstance(name, str) and name in SYSTEM_STATES.values()):
            code = raw.get("Value")
            if isinstance(code, int) and code in SYSTEM_STATES:
                return code
            return next((c for c, n in SYSTEM_STATES.items() if n == name), None)
    return None


def _digital_code(point: Point, raw: Any) -> int | None:
    assert point.digital_set is not None
    codes = point.digital_set.names_by_code
    if isinstance(raw, dict):
        raw = raw.get("Value", raw.get("Name"))
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float) and int(raw) == raw and int(raw) in codes:
        return int(raw)
    if isinstance(raw, str):
        return next((c for c, n in codes.items() if n.lower() == raw.lower()), None)
    return None


UPDATE_OPTIONS = ("replace", "insert", "noreplace", "replaceonly", "insertnocompression", "remove")


def apply_write(state: EmulatorState, point: Point, ts: int, event: Event, option: str) -> None:
    archive = state.archive
    if option == "replace":
        archive.replace(point, ts, event)
    elif option in ("insert", "insertnocompression"):
        archive.insert(point, ts, event)
    elif option == "noreplace":
        archive.no_replace(point, ts, event)
    elif option == "replaceonly":
        if archive.recorded(point, ts, ts, limit=1, now_us=max(ts, state.clock.now_us())):
            archive.replace(point, ts, event)
    elif option == "remove":
        archive.delete(point, ts)
