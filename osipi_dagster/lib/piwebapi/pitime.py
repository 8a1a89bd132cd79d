"""PI time expressions (`*`, `*-1d`, `t`, `y+8h`, ISO 8601, weekday names) → timezone-aware UTC datetimes.

The product's own parser (the emulator has a separate one). Everything is UTC: `t` is today's UTC midnight and a
naive ISO time is read as UTC, so a schedule means the same thing on every machine.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

TimeLike = datetime | str

_UNITS_S: dict[str, float] = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
# Calendar units: a month or a year is not a fixed number of seconds.
_UNITS_MONTHS: dict[str, int] = {"mo": 1, "month": 1, "months": 1, "y": 12, "year": 12, "years": 12}

_OFFSET = re.compile(r"\s*([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*")
_SPAN = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*$")
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)} | {
    name.lower(): i for i, name in enumerate(calendar.day_abbr)
}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_abbr) if name
}


class PITimeError(ValueError):
    """A time expression the parser does not understand; the message quotes it and lists what is accepted."""


def _error(text: str, why: str) -> PITimeError:
    return PITimeError(
        f"Cannot read PI time {text!r}: {why}. Use '*', '*-1d', 't', 'y+8h', a weekday name, "
        "or ISO 8601 such as '2024-05-01T00:00:00Z' (naive times are UTC)."
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def _add_months(base: datetime, months: int) -> datetime:
    month0 = base.month - 1 + months
    year = base.year + month0 // 12
    month = month0 % 12 + 1
    day = min(base.day, calendar.monthrange(year, month)[1])
    return base.replace(year=year, month=month, day=day)


def _apply(base: datetime, sign: str, amount: str, unit: str, text: str) -> datetime:
    value = float(amount) * (-1 if sign == "-" else 1)
    low = unit.lower()
    if low in _UNITS_MONTHS:
        if value != int(value):
            raise _error(text, f"fractional {unit!r} offsets are not supported")
        return _add_months(base, int(value) * _UNITS_MONTHS[low])
    if low not in _UNITS_S:
        raise _error(text, f"unknown time unit {unit!r}")
    return base + timedelta(seconds=value * _UNITS_S[low])


def _parse_absolute(word: str, now: datetime, text: str) -> datetime:
    low = word.lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if low in ("", "*", "now"):
        return now
    if low in ("t", "today"):
        return midnight
    if low in ("y", "yesterday"):
        return midnight - timedelta(days=1)
    if low in _WEEKDAYS:
        # The most recent occurrence of that weekday (today counts), at midnight.
        return midnight - timedelta(days=(midnight.weekday() - _WEEKDAYS[low]) % 7)
    if low in _MONTHS:
        month = _MONTHS[low]
        day = min(now.day, calendar.monthrange(now.year, month)[1])
        return midnight.replace(month=month, day=day)
    if word.isdigit() and len(word) <= 2 and 1 <= int(word) <= 31:
        day = int(word)
        if day > calendar.monthrange(now.year, now.month)[1]:
            raise _error(text, f"day {day} does not exist in the current month")
        return midnight.replace(day=day)
    if word.isdigit() and len(word) == 4 and int(word) >= 1970:
        return midnight.replace(year=int(word), month=1, day=1)
    iso = word.strip().strip("'\"")
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise _error(text, "not a PI time keyword or an ISO 8601 time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time(value: TimeLike, now: datetime | None = None) -> datetime:
    """A PI time expression or datetime → aware UTC datetime. `now` anchors relative expressions (default: clock)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PITimeError(
                f"datetime {value.isoformat()} has no time zone: pass an aware datetime (e.g. tzinfo=UTC)."
            )
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise PITimeError(f"Cannot read PI time {value!r}: expected a str or an aware datetime.")
    text = value
    now = (now or utcnow()).astimezone(UTC)
    stripped = text.strip()
    # Split "<absolute><offset><offset>..." — the absolute part is everything before the first +/- offset that
    # follows it. ISO strings contain '-' and '+', so try the whole string as ISO first.
    if re.match(r"^\d{4}-\d{2}-\d{2}", stripped):
        return _parse_absolute(stripped, now, text)
    match = re.match(r"^([^+-]*)(.*)$", stripped)
    assert match is not None
    head, tail = match.group(1).strip(), match.group(2)
    result = _parse_absolute(head, now, text)
    pos = 0
    if tail and not _OFFSET.match(tail):
        raise _error(text, f"cannot read the offset {tail!r}")
    while pos < len(tail):
        m = _OFFSET.match(tail, pos)
        if m is None or m.end() == pos:
            raise _error(text, f"cannot read the offset {tail[pos:]!r}")
        result = _apply(result, m.group(1), m.group(2), m.group(3), text)
        pos = m.end()
    return result


def parse_interval(text: str | timedelta) -> timedelta:
    """An AFTimeSpan such as '1h', '30m', '1.5d', '500ms' → timedelta (months/years are rejected: not fixed)."""
    if isinstance(text, timedelta):
        return text
    m = _SPAN.match(text)
    if m is None or m.group(3).lower() not in _UNITS_S:
        raise PITimeError(
            f"Cannot read interval {text!r}: use a number and a unit such as '1h', '30m', '1d', '500ms'."
        )
    seconds = float(m.group(2)) * _UNITS_S[m.group(3).lower()]
    return timedelta(seconds=-seconds if m.group(1) == "-" else seconds)


def to_pi(dt: datetime) -> str:
    """The ISO 8601 UTC 'Z' text the client sends to the server (microseconds only when present)."""
    dt = dt.astimezone(UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_span(span: timedelta) -> str:
    """A timedelta as an AFTimeSpan the server accepts ('3600s', '0.5s')."""
    seconds = span.total_seconds()
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
