"""SQL predicate text for delta-rs: literals, identifiers, time windows and the extra replace dimension.

Timestamps are always rendered as UTC with microseconds and a 'Z' suffix so delta-rs compares tz-aware values exactly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import WindowError

_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
ExtraPredicate = str | Mapping[str, Any]


def quote_ident(name: str) -> str:
    """Lower-case snake names stay bare; anything else is double-quoted (DataFusion folds bare names to lower case)."""
    if _PLAIN_IDENT.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def utc(value: dt.datetime, what: str) -> dt.datetime:
    """Require a tz-aware datetime and convert it to UTC; naive values are ambiguous and rejected."""
    if not isinstance(value, dt.datetime):
        raise WindowError(f"{what} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise WindowError(f"{what} {value!r} is naive: pass a tz-aware datetime (e.g. tzinfo=datetime.UTC)")
    return value.astimezone(dt.UTC)


def timestamp_literal(value: dt.datetime) -> str:
    # A fixed width with microseconds and 'Z' parses identically at midnight and at .000001 boundaries.
    return "'" + utc(value, "timestamp").strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def literal(value: Any) -> str:
    """Render one Python value as a SQL literal for a delta-rs predicate."""
    if value is None:
        raise ValueError("None has no SQL literal: filter nulls with 'IS NULL' in a string predicate instead")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Cannot use non-finite float {value!r} in a predicate")
        return repr(value)
    if isinstance(value, dt.datetime):
        return timestamp_literal(value)
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"Unsupported predicate value type {type(value).__name__}: {value!r}")


def window_bounds(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Validate and normalise a half-open [start, end) window to UTC."""
    start_utc, end_utc = utc(start, "window start"), utc(end, "window end")
    if start_utc >= end_utc:
        raise WindowError(
            f"Empty or inverted window: start {start_utc.isoformat()} >= end {end_utc.isoformat()}"
        )
    return start_utc, end_utc


def window_predicate(column: str, start: dt.datetime, end: dt.datetime) -> str:
    col = quote_ident(column)
    return f"{col} >= {timestamp_literal(start)} AND {col} < {timestamp_literal(end)}"


def date_range_predicate(column: str, start: dt.datetime, end: dt.datetime) -> str:
    """Dates touched by [start, end): lets delta-rs prune date partitions before reading any file."""
    first = utc(start, "window start").date()
    last = (utc(end, "window end") - dt.timedelta(microseconds=1)).date()
    col = quote_ident(column)
    if first == last:
        return f"{col} = {literal(first)}"
    return f"{col} >= {literal(first)} AND {col} <= {literal(last)}"


def mapping_predicate(extra: Mapping[str, Any]) -> str:
    """{"source": "x", "web_id": ["A", "B"]} -> "source = 'x' AND web_id IN ('A', 'B')"."""
    if not extra:
        raise ValueError("extra_predicate mapping is empty")
    clauses = []
    for column, value in extra.items():
        col = quote_ident(column)
        if isinstance(value, Iterable) and not isinstance(value, str | bytes):
            values = list(value)
            if not values:
                raise ValueError(
                    f"extra_predicate for column {column!r} is an empty list: nothing would match"
                )
            clauses.append(f"{col} IN ({', '.join(literal(v) for v in values)})")
        else:
            clauses.append(f"{col} = {literal(value)}")
    return " AND ".join(clauses)


def extra_predicate_sql(extra: ExtraPredicate) -> str:
    if isinstance(extra, str):
        if not extra.strip():
            raise ValueError("extra_predicate string is empty")
        return f"({extra})"
    return mapping_predicate(extra)
