"""PI time expressions and AFTimeSpan intervals → UTC microseconds (the emulator's own parser).

Covers what clients send: `*`, `*-1d`, `t`, `y+8h`, `-1.5d`, weekday/month names, day numbers, ISO 8601 and the
.NET forms `01-May-24 10:00:00` (PI's own) and `5/1/2024 10:00:00 AM`.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

US_PER_S = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Fixed-length units in microseconds; months and years are calendar units handled separately.
_UNIT_US: dict[str, int] = {}
for _names, _us in (
    (("ms", "millisecond", "milliseconds"), 1_000),
    (("s", "sec", "secs", "second", "seconds"), US_PER_S),
    (("m", "min", "mins", "minute", "minutes"), 60 * US_PER_S),
    (("h", "hr", "hrs", "hour", "hours"), 3_600 * US_PER_S),
    (("d", "day", "days"), 86_400 * US_PER_S),
    (("w", "wk", "week", "weeks"), 7 * 86_400 * US_PER_S),
):
    for _n in _names:
        _UNIT_US[_n] = _us
_CALENDAR_UNITS = {"mo": 1, "month": 1, "months": 1, "y": 12, "yr": 12, "year": 12, "years": 12}

_NUM_UNIT = r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)"
_OFFSET_RE = re.compile(r"^(.*?)\s*([+-])\s*" + _NUM_UNIT + r"$", re.DOTALL)
_INTERVAL_RE = re.compile(r"^([+-]?)\s*" + _NUM_UNIT + r"$")
_HMS_RE = re.compile(r"^([+-]?)(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
# .NET DateTime.TryParse forms (en-US) that PI clients send besides ISO 8601: PI's own "01-May-24 10:00:00"
# (tagreader) and "5/1/2024 10:00:00 AM", each with an optional time of day and AM/PM.
_CLOCK = r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(?:\s*([AaPp][Mm]))?)?"
_PI_DATE_RE = re.compile(r"^(\d{1,2})-([A-Za-z]{3,9})-(\d{4}|\d{2})" + _CLOCK + "$")
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})" + _CLOCK + "$")

_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAYS.update({name.lower(): i for i, name in enumerate(calendar.day_abbr)})
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone '{tz}'.") from None


def to_us(dt: datetime) -> int:
    """Aware datetime → UTC microseconds since the epoch (exact integer arithmetic)."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def format_us(us: int) -> str:
    """UTC ISO 8601 with 'Z', fractional seconds only when present (trailing zeros trimmed), as PI writes them."""
    dt = from_us(us)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def _add_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(total, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


def _parse_iso(text: str, zone: ZoneInfo) -> datetime | None:
    candidate = _FRACTION_RE.sub(r"\1", text.strip().strip("'\""))
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    elif candidate.upper().endswith(" GMT"):
        candidate = candidate[:-4] + "+00:00"
    try:
        dt = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=zone)


def _parse_dotnet(text: str, zone: ZoneInfo) -> datetime | None:
    """`dd-MMM-yy[yy] [h:mm[:ss[.f]]] [AM|PM]` or `M/d/yy[yy] …` in `zone`; None when neither form matches.

    Two-digit years fall in 1950–2049, Windows' default window for .NET's TwoDigitYearMax.
    """
    raw = text.strip().strip("'\"")
    pi, us = _PI_DATE_RE.match(raw), _US_DATE_RE.match(raw)
    if pi:
        day_text, month_text, year_text, *clock = pi.groups()
        month = _MONTHS.get(month_text.lower())
        if month is None:
            raise ValueError(f"Unknown month '{month_text}'.")
        day = int(day_text)
    elif us:
        month_text, day_text, year_text, *clock = us.groups()
        month, day = int(month_text), int(day_text)
    else:
        return None
    year = int(year_text)
    if len(year_text) == 2:
        year += 2000 if year < 50 else 1900
    hour, minute, second, fraction, meridiem = clock
    h = int(hour or 0)
    if meridiem:
        if not 1 <= h <= 12:
            raise ValueError(f"Hour {h} is not valid with {meridiem.upper()}.")
        h = h % 12 + (12 if meridiem.lower() == "pm" else 0)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(year, month, day, h, int(minute or 0), int(second or 0), micro, tzinfo=zone)


def _parse_base(base: str, now_us: int, zone: ZoneInfo) -> datetime:
    now_local = from_us(now_us).astimezone(zone)
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    low = base.strip().lower()
    if low in ("", "*", "now"):
        return from_us(now_us)
    if low in ("t", "today"):
        return midnight
    if low in ("y", "yesterday"):
        return _add_days_local(midnight, -1, zone)
    if low in _WEEKDAYS:
        back = (now_local.weekday() - _WEEKDAYS[low]) % 7
        return _add_days_local(midnight, -back, zone)
    if low in _MONTHS:
        month = _MONTHS[low]
        day = min(now_local.day, calendar.monthrange(now_local.year, month)[1])
        return midnight.replace(month=month, day=day)
    if low.isdigit() and len(low) <= 2 and 1 <= int(low) <= 31:
        day = int(low)
        if day > calendar.monthrange(now_local.year, now_local.month)[1]:
            raise ValueError(f"Day {day} does not exist in the current month.")
        return midnight.replace(day=day)
    if low.isdigit() and len(low) == 4 and int(low) >= 1970:
        return midnight.replace(year=int(low), month=1, day=1)
    dt = _parse_iso(base, zone) or _parse_dotnet(base, zone)
    if dt is None:
        raise ValueError(f"Cannot parse '{base}' as a time.")
    return dt


def _add_days_local(dt: datetime, days: int, zone: ZoneInfo) -> datetime:
    # Calendar days in the local zone (so 't-1d' stays at local midnight across a DST change).
    naive = dt.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=zone)


def parse_time(text: str | None, now_us: int, tz: str = "UTC") -> int:
    """A PI time string → UTC microseconds. Naive times are read in `tz` (the emulator's server zone is UTC).

    Raises ValueError naming the input when it is not a valid PI time expression.
    """
    if text is None:
        return now_us
    raw = text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1].strip()
    if raw == "":
        return now_us
    zone = _zone(tz)
    try:
        match = _OFFSET_RE.match(raw)
        if match and match.group(4).lower() in (_UNIT_US.keys() | _CALENDAR_UNITS.keys()):
            base_text, sign, number, unit = match.groups()
            base = _parse_base(base_text, now_us, zone)
            return _apply_offset(base, -1 if sign == "-" else 1, number, unit.lower())
        return to_us(_parse_base(raw, now_us, zone))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"Cannot parse time string '{text}': {exc}") from None


def _apply_offset(base: datetime, sign: int, number: str, unit: str) -> int:
    if unit in _CALENDAR_UNITS:
        if "." in number:
            raise ValueError(f"Fractional {unit} offsets are not supported.")
        return to_us(_add_months(base, sign * int(number) * _CALENDAR_UNITS[unit]))
    return to_us(base) + sign * round(float(number) * _UNIT_US[unit])


def parse_interval(text: str | None) -> int:
    """An AFTimeSpan such as `1h`, `30m`, `1d`, `500ms`, `1.5h` or `00:30:00` → microseconds (sign kept)."""
    if text is None or not text.strip():
        raise ValueError("An interval is required (e.g. '1h').")
    raw = text.strip()
    match = _INTERVAL_RE.match(raw)
    if match:
        sign, number, unit = match.groups()
        unit_us = _UNIT_US.get(unit.lower())
        if unit_us is None:
            raise ValueError(f"Cannot parse interval '{text}': unknown unit '{unit}'.")
        value = round(float(number) * unit_us)
        return -value if sign == "-" else value
    hms = _HMS_RE.match(raw)
    if hms:
        sign, days, hours, minutes, seconds, fraction = hms.groups()
        value = (
            (int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds or 0)) * US_PER_S
        ) + (int((fraction or "0")[:6].ljust(6, "0")))
        return -value if sign == "-" else value
    raise ValueError(f"Cannot parse interval '{text}'.")
