"""Decoding PI Web API JSON (parsed by orjson, or by msgspec into typed.py's Structs) into typed polars frames in
the documented schemas.

The hot path builds columns, not rows: one C-level pass per column over the parsed values, vectorised timestamp
parsing in polars, and a per-value Python loop only for streams whose values are not all numbers (digital, string).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain, compress, count
from operator import attrgetter, itemgetter, methodcaller, not_
from typing import Any

import msgspec
import numpy as np
import polars as pl

from osipi_dagster.lib.piwebapi.errors import ResponseError, server_messages
from osipi_dagster.lib.piwebapi.schema import (
    EF_ATTRIBUTES_SCHEMA,
    SUMMARY_SCHEMA,
    UTC_US,
    VALUES_SCHEMA,
)
from osipi_dagster.lib.piwebapi.typed import StreamSetValues, TimedValue

# SYSTEM digital state codes live in 193..320 (reserved for AVEVA); used only when a server omits IsSystem.
SYSTEM_CODES = range(193, 321)
_NUMBER_TYPES = frozenset({float, int})
_IS_NUMBER_TYPE = _NUMBER_TYPES.__contains__
_TS = itemgetter("Timestamp")
_VALUE = itemgetter("Value")
_GOOD = itemgetter("Good")
_QUEST = itemgetter("Questionable")
_SUBST = itemgetter("Substituted")
_ANNOTATED = itemgetter("Annotated")
_GET_VALUE = methodcaller("get", "Value")
_GET_GOOD = methodcaller("get", "Good", True)
_GET_QUEST = methodcaller("get", "Questionable", False)
_GET_SUBST = methodcaller("get", "Substituted", False)
_GET_ANNOTATED = methodcaller("get", "Annotated", False)
_HAS_ERRORS = methodcaller("get", "Errors")
_A_TS = attrgetter("Timestamp")
_A_VALUE = attrgetter("Value")
_A_GOOD = attrgetter("Good")
_A_QUEST = attrgetter("Questionable")
_A_SUBST = attrgetter("Substituted")
_A_ANNOTATED = attrgetter("Annotated")


class StreamChunk:
    """The values of one stream from one response: web id, parsed TimedValue dicts, stream-level units."""

    __slots__ = ("items", "ordinal_offset", "units", "web_id")

    def __init__(
        self, web_id: str, items: list[dict[str, Any]], units: str | None = None, ordinal_offset: int = 0
    ):
        self.web_id = web_id
        self.items = items
        self.units = units
        # Values already delivered at this chunk's first timestamp (continuation reads): ordinals start there.
        self.ordinal_offset = ordinal_offset


# "YYYY-MM-DDTHH:MM:SS[.f]Z", what PI Web API sends: where the separators and the digits are.
_SEPARATORS = ((4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":")))
_SHORTEST, _LONGEST = 20, 30  # no fraction; 9 fractional digits (nanoseconds)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _epoch_us_fast(texts: Sequence[Any]) -> np.ndarray | None:
    """UTC microseconds of texts that are all exactly "YYYY-MM-DDTHH:MM:SSZ" or "...SS.<1-9 digits>Z", vectorised
    in numpy over the bytes (a fraction is truncated to microseconds, as polars' %.f does). None when any text has
    another shape or an out-of-range field (offsets, leap seconds, Feb 30, nulls): the caller then parses the whole
    column with polars, so odd input behaves exactly as before."""
    n = len(texts)
    try:
        joined = "".join(texts)
    except TypeError:  # a null or a non-text timestamp
        return None
    if not n or not joined.isascii():
        return None
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    shortest, longest = int(lens.min()), int(lens.max())
    if shortest < _SHORTEST or longest > _LONGEST or (lens == _SHORTEST + 1).any():
        return None
    raw = joined.encode("ascii")
    if shortest == longest:
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(n, shortest)

        def at(k: int) -> np.ndarray:
            return rows[:, k]
    else:
        # Padded, so that reading a fixed position past the end of a short last text stays inside the buffer.
        buf = np.frombuffer(raw + bytes(_LONGEST), dtype=np.uint8)
        starts = np.cumsum(lens) - lens

        def at(k: int) -> np.ndarray:
            return buf[starts + k]

    ok = (at(shortest - 1) if shortest == longest else buf[starts + lens - 1]) == ord("Z")
    for k, sep in _SEPARATORS:
        ok &= at(k) == sep

    def number(*positions: int) -> np.ndarray:
        nonlocal ok
        out = np.zeros(n, dtype=np.int64)
        for k in positions:
            d = at(k).astype(np.int64) - 48
            ok &= (d >= 0) & (d <= 9)
            out = out * 10 + d
        return out

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    frac_ns = np.zeros(n, dtype=np.int64)
    if longest > _SHORTEST:
        has_frac = lens > _SHORTEST
        ok &= ~has_frac | (at(19) == ord("."))
        for i, k in enumerate(range(20, longest - 1)):
            inside = k < lens - 1
            d = at(k).astype(np.int64) - 48
            ok &= ~inside | ((d >= 0) & (d <= 9))
            frac_ns += np.where(inside, d, 0) * 10 ** (8 - i)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    dim = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= dim) & (hour <= 23) & (minute <= 59) & (second <= 59)
    if not ok.all():
        return None
    # Days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's days_from_civil), all in int64.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + frac_ns // 1000


def parse_timestamps(texts: Sequence[str] | pl.Series) -> pl.Series:
    """ISO 8601 texts (Z, fractional seconds, or offsets) → Datetime(us, UTC), vectorised."""
    if not isinstance(texts, pl.Series):
        fast = _epoch_us_fast(texts)
        if fast is not None:
            return (
                pl.Series("timestamp", fast, dtype=pl.Int64)
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
            )
    s = texts if isinstance(texts, pl.Series) else pl.Series("timestamp", texts, dtype=pl.Utf8)
    out = s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC", strict=False)
    missing = out.is_null() & s.is_not_null()
    if missing.any():
        # Rare: offsets other than Z (+00:00). Parse just those rows with an offset-aware format.
        other = (
            s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False)
            .dt.convert_time_zone("UTC")
            .cast(UTC_US)
        )
        out = out.zip_with(~missing, other)
        bad = out.is_null() & s.is_not_null()
        if bad.any():
            raise ResponseError(f"PI Web API sent an unreadable timestamp {s.filter(bad)[0]!r}")
    return out.alias("timestamp")


def _flags(column: list[Any], default: bool) -> list[bool | None] | list[Any]:
    """Boolean flags as sent: real booleans, or "true"/"false" strings (channel messages), or missing."""
    kinds = set(map(type, column))
    if kinds <= {bool}:
        return column
    out: list[bool | None] = []
    for v in column:
        if v is None:
            out.append(default)
        elif isinstance(v, str):
            out.append(v.strip().lower() == "true")
        else:
            out.append(bool(v))
    return out


def _columns(chunk: StreamChunk) -> tuple[list[Any], ...]:
    """Per-stream column lists: timestamp, value, good, questionable, substituted, annotated (C-level map passes)."""
    items = chunk.items
    try:
        ts = list(map(_TS, items))
        vals = list(map(_VALUE, items))
        good = list(map(_GOOD, items))
        quest = list(map(_QUEST, items))
        subst = list(map(_SUBST, items))
    except (KeyError, TypeError):
        # Some servers and channel messages omit status flags: fall back to per-key lookups with defaults.
        # A value that is not an object, or has no Timestamp, cannot be placed in time: reject the response.
        bad = next((v for v in items if not isinstance(v, dict) or v.get("Timestamp") is None), None)
        if bad is not None:
            raise malformed(f"a value without a Timestamp ({str(bad)[:80]})", chunk.web_id) from None
        ts = [v["Timestamp"] for v in items]
        vals = list(map(_GET_VALUE, items))
        good = list(map(_GET_GOOD, items))
        quest = list(map(_GET_QUEST, items))
        subst = list(map(_GET_SUBST, items))
    annotated = list(map(_GET_ANNOTATED, items))
    return ts, vals, _flags(good, True), _flags(quest, False), _flags(subst, False), _flags(annotated, False)


def _split_values(
    vals: list[Any],
) -> tuple[list[Any], list[str | None] | None, list[int | None] | None, list[bool] | None]:
    """Value column → (numeric, text, digital code, is_system). Fast path when all values are numbers; otherwise
    only the values that are not numbers (system states in a numeric stream, digital/string values) are visited."""
    kinds = set(map(type, vals))
    if kinds <= _NUMBER_TYPES:
        return vals, None, None, None
    n = len(vals)
    num: list[Any] = list(vals)  # numbers stay as they are; every other position is overwritten below
    text: list[str | None] = [None] * n
    code: list[int | None] = [None] * n
    system: list[bool] = [False] * n
    for i in compress(count(), map(not_, map(_IS_NUMBER_TYPE, map(type, vals)))):
        v = vals[i]
        if isinstance(v, dict):
            c = v.get("Value")
            c = int(c) if isinstance(c, (int, float)) and not isinstance(c, bool) else None
            is_sys = v.get("IsSystem")
            if isinstance(is_sys, str):
                is_sys = is_sys.lower() == "true"
            elif is_sys is None:
                is_sys = c is not None and c in SYSTEM_CODES
            num[i] = None
            text[i] = v.get("Name")
            code[i] = c
            system[i] = bool(is_sys)
        elif isinstance(v, str):
            num[i] = None
            text[i] = v
        elif isinstance(v, bool):
            num[i] = float(v)
        elif isinstance(v, (int, float)):
            pass  # a subclass of int or float: kept as the number it is
        else:
            # null or a structure we do not model (e.g. Blob): keep the row, value unknown.
            num[i] = None
            text[i] = None if v is None else str(v)
    return num, text, code, system


def check_errors(obj: Mapping[str, Any], what: str, web_id: str | None) -> None:
    """`Errors` on a stream or value means PI hit a handled error for it: the data is incomplete, so raise."""
    errors = obj.get("Errors")
    if errors:
        raise ResponseError(
            f"PI Web API reported errors for {what}" + (f" (web id {web_id})" if web_id else ""),
            web_id=web_id,
            server_errors=server_messages({"Errors": errors}),
            advice="the server could not read this stream; check the point's data source and the PI archive",
        )


class _Columns:
    """The decoded columns of a list of chunks, before timestamps are parsed: lists or boolean Series."""

    __slots__ = ("annotated", "code", "good", "num", "quest", "subst", "system", "text", "ts")

    def __init__(self) -> None:
        self.ts: list[Any] = []
        self.num: list[Any] = []
        # None while every value is numeric (the text, code and system columns are then constant).
        self.text: list[Any] | None = None
        self.code: list[Any] | None = None
        self.system: list[Any] | None = None
        self.good: list[Any] | pl.Series = []
        self.quest: list[Any] | pl.Series = []
        self.subst: list[Any] | pl.Series = []
        self.annotated: list[Any] | pl.Series = []

    def add_values(self, vals: list[Any]) -> None:
        """Append one stream's values, split into numeric / text / code / system columns."""
        num, text, code, system = _split_values(vals)
        self.num += num
        n = len(vals)
        if text is None:
            if self.text is not None:
                self.text += [None] * n
                self.code += [None] * n  # type: ignore[operator]
                self.system += [False] * n  # type: ignore[operator]
        else:
            if self.text is None:
                # First non-numeric stream: back-fill the numeric streams seen so far.
                done = len(self.num) - n
                self.text, self.code, self.system = [None] * done, [None] * done, [False] * done
            self.text += text
            self.code += code  # type: ignore[operator]
            self.system += system  # type: ignore[operator]


def _bool_series(column: list[Any], default: bool) -> pl.Series:
    """A flag column as Boolean: built directly when every entry is a real boolean (the norm), else via _flags."""
    try:
        series = pl.Series(column, dtype=pl.Boolean)  # strict: raises on anything but bools and nulls
        if not series.has_nulls():
            return series
    except TypeError:
        pass
    return pl.Series(_flags(column, default), dtype=pl.Boolean)


def _typed_columns(items: list[TimedValue]) -> _Columns:
    """Columns of typed.py's TimedValues: every field is present and checked (flags are real booleans, no Errors)."""
    out = _Columns()
    out.ts = list(map(_A_TS, items))
    out.good = pl.Series(list(map(_A_GOOD, items)), dtype=pl.Boolean)
    out.quest = pl.Series(list(map(_A_QUEST, items)), dtype=pl.Boolean)
    out.subst = pl.Series(list(map(_A_SUBST, items)), dtype=pl.Boolean)
    out.annotated = pl.Series(list(map(_A_ANNOTATED, items)), dtype=pl.Boolean)
    out.num, out.text, out.code, out.system = _split_values(list(map(_A_VALUE, items)))
    return out


def _flat_columns(chunks: list[StreamChunk]) -> _Columns | None:
    """Fast path: one C-level pass per column over every value of every chunk at once. None when a value lacks a
    status flag, is not an object, or carries Errors: the per-chunk path then decodes (or raises) exactly as always."""
    typed = [type(c.items[0]) is TimedValue for c in chunks]
    if any(typed) and not all(typed):
        # Typed and dict values in one call (never from the client): decode all as dicts.
        for chunk, is_typed in zip(chunks, typed, strict=True):
            if is_typed:
                chunk.items = [msgspec.structs.asdict(v) for v in chunk.items]
    items = chunks[0].items if len(chunks) == 1 else list(chain.from_iterable(c.items for c in chunks))
    if all(typed):
        return _typed_columns(items)
    out = _Columns()
    try:
        out.ts = list(map(_TS, items))
        vals = list(map(_VALUE, items))
        good = list(map(_GOOD, items))
        quest = list(map(_QUEST, items))
        subst = list(map(_SUBST, items))
    except (KeyError, TypeError):
        return None
    try:
        annotated = list(map(_ANNOTATED, items))
        keys_read = 6
    except KeyError:
        annotated = list(map(_GET_ANNOTATED, items))
        keys_read = 5
    # A value holding exactly the keys just read has no Errors member: scan for Errors only when one has more keys.
    if max(map(len, items)) > keys_read and any(map(_HAS_ERRORS, items)):
        return None
    out.good = _bool_series(good, True)
    out.quest = _bool_series(quest, False)
    out.subst = _bool_series(subst, False)
    out.annotated = _bool_series(annotated, False)
    # Split once for the whole response: a numeric stream's rows get the same null text/code and false is_system
    # as when streams are split one by one.
    out.num, out.text, out.code, out.system = _split_values(vals)
    return out


def _chunked_columns(chunks: list[StreamChunk]) -> _Columns:
    """Per-chunk path with defaults for missing flags; raises on values without a Timestamp or with Errors."""
    out = _Columns()
    good: list[Any] = []
    quest: list[Any] = []
    subst: list[Any] = []
    annotated: list[Any] = []
    for chunk in chunks:
        # _columns first: it rejects values that are not TimedValue objects, which the Errors scan assumes.
        ts, vals, g, q, s, a = _columns(chunk)
        if any(map(_HAS_ERRORS, chunk.items)):
            for value in chunk.items:
                check_errors(value, "a value", chunk.web_id)
        out.ts += ts
        good += g
        quest += q
        subst += s
        annotated += a
        out.add_values(vals)
    out.good = pl.Series(good, dtype=pl.Boolean)
    out.quest = pl.Series(quest, dtype=pl.Boolean)
    out.subst = pl.Series(subst, dtype=pl.Boolean)
    out.annotated = pl.Series(annotated, dtype=pl.Boolean)
    return out


def values_frame(chunks: Sequence[StreamChunk]) -> pl.DataFrame:
    """StreamChunks → one VALUES_SCHEMA frame (ordinals computed per stream and timestamp, in response order)."""
    chunks = [c for c in chunks if c.items]
    if not chunks:
        return pl.DataFrame(schema=VALUES_SCHEMA)
    lengths = np.fromiter((len(c.items) for c in chunks), dtype=np.int64, count=len(chunks))
    total = int(lengths.sum())
    cols = _flat_columns(chunks)
    if cols is None:
        cols = _chunked_columns(chunks)
    ts_all = cols.ts
    any_text = cols.text is not None

    timestamps = parse_timestamps(ts_all)
    if timestamps.null_count():
        # "Timestamp": null on the fast path (the key was present): same malformed value as a missing key.
        first = int(timestamps.is_null().arg_true()[0])
        owner = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise malformed("a value with a null Timestamp", chunks[owner].web_id)
    # Ordinal: position within a run of equal timestamps of one stream (values arrive in archive order).
    ts_int = timestamps.dt.epoch("us").to_numpy()
    stream_idx = np.repeat(np.arange(len(chunks)), lengths)
    idx = np.arange(total, dtype=np.int64)
    new_run = np.ones(total, dtype=bool)
    new_run[1:] = (ts_int[1:] != ts_int[:-1]) | (stream_idx[1:] != stream_idx[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    ordinal = idx - run_start
    offsets = np.fromiter((c.ordinal_offset for c in chunks), dtype=np.int64, count=len(chunks))
    if offsets.any():
        # Continuation reads: the leading run of a chunk continues ordinals already delivered.
        chunk_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        first_ts = ts_int[chunk_start]
        leading = (ts_int == first_ts[stream_idx]) & (run_start == chunk_start[stream_idx])
        ordinal = ordinal + np.where(leading, offsets[stream_idx], 0)

    units = [c.units if c.units is not None else (c.items[0].get("UnitsAbbreviation") or "") for c in chunks]
    frame = pl.DataFrame(
        {
            "web_id": pl.Series([c.web_id for c in chunks], dtype=pl.Utf8).gather(stream_idx),
            "timestamp": timestamps,
            "ordinal": pl.Series(ordinal, dtype=pl.Int32),
            "value": pl.Series(cols.num, dtype=pl.Float64, strict=False),
            "value_text": pl.Series(cols.text, dtype=pl.Utf8)
            if any_text
            else pl.repeat(None, total, dtype=pl.Utf8, eager=True),
            "digital_code": pl.Series(cols.code, dtype=pl.Int32)
            if any_text
            else pl.repeat(None, total, dtype=pl.Int32, eager=True),
            "is_system": pl.Series(cols.system, dtype=pl.Boolean)
            if any_text
            else pl.repeat(False, total, dtype=pl.Boolean, eager=True),
            "good": cols.good,
            "questionable": cols.quest,
            "substituted": cols.subst,
            "annotated": cols.annotated,
            "units": pl.Series(units, dtype=pl.Utf8).gather(stream_idx),
        }
    )
    # Numbers arriving for a value that also carries a digital state are impossible; NaN from PI is kept as NaN.
    return frame


def malformed(detail: str, web_id: str | None) -> ResponseError:
    """A body without PI Web API's documented shape: decoding it would invent or drop values, so it is an error.

    Decoding does not know the request; the client adds method and path (base.reading).
    """
    return ResponseError(
        f"PI Web API sent a malformed response: {detail}" + (f" (web id {web_id})" if web_id else ""),
        web_id=web_id or None,
        advice="the body does not have PI Web API's documented shape; check the server version, proxies and logs",
    )


def stream_items(body: Any, what: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The per-stream objects of a stream-set body as (web id, item): Items must be a list of objects with a WebId
    (never rows with a null web id); per-stream Errors raise."""
    if not isinstance(body, Mapping):
        raise malformed(f"{what}: the body is a {type(body).__name__}, not an object", None)
    items = body.get("Items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise malformed(f"{what}: Items is a {type(items).__name__}, not a list", None)
    out = []
    for item in items:
        web_id = item.get("WebId") if isinstance(item, Mapping) else None
        if not isinstance(web_id, str) or not web_id:
            raise malformed(f"{what} for a stream without a WebId ({str(item)[:80]})", None)
        check_errors(item, what, web_id)
        out.append((web_id, item))
    return out


def streamset_chunks(body: Mapping[str, Any], what: str) -> list[StreamChunk]:
    """Stream-set recorded/interpolated/plot body (or a channel message) → chunks, raising on per-stream Errors."""
    if isinstance(body, StreamSetValues):  # typed.parse_streamset: shape and Errors already checked
        return [StreamChunk(s.WebId, s.Items, s.UnitsAbbreviation) for s in body.Items]
    chunks = []
    for web_id, item in stream_items(body, what):
        values = item.get("Items")
        if values is not None and not isinstance(values, list):
            raise malformed(f"{what}: the stream's Items is a {type(values).__name__}, not a list", web_id)
        chunks.append(StreamChunk(web_id, values or [], item.get("UnitsAbbreviation")))
    return chunks


def decode_streamset(body: Mapping[str, Any], what: str = "a stream") -> pl.DataFrame:
    """A stream-set values body (recorded, interpolated, plot, channel message) → VALUES_SCHEMA."""
    return values_frame(streamset_chunks(body, what))


def decode_end_values(body: Mapping[str, Any], what: str = "the end value") -> pl.DataFrame:
    """A stream-set value/end body ({Items: [{WebId, Value: TimedValue}]}) → VALUES_SCHEMA, one row per stream."""
    chunks = []
    for web_id, item in stream_items(body, what):
        value = item.get("Value")
        if not isinstance(value, dict):
            raise malformed(f"{what}: the stream has no TimedValue in Value", web_id)
        chunks.append(StreamChunk(web_id, [value], item.get("UnitsAbbreviation")))
    return values_frame(chunks)


def decode_summary(body: Mapping[str, Any]) -> pl.DataFrame:
    """A stream-set summary body → SUMMARY_SCHEMA (one row per stream, summary type and interval)."""
    rows: dict[str, list[Any]] = {k: [] for k in SUMMARY_SCHEMA}
    for web_id, item in stream_items(body, "the summary"):
        entries = item.get("Items") or []
        if not isinstance(entries, list):
            raise malformed(f"the summary: Items is a {type(entries).__name__}, not a list", web_id)
        for entry in entries:
            value = entry.get("Value") if isinstance(entry, Mapping) else None
            if not isinstance(value, Mapping) or not value.get("Timestamp"):
                raise malformed(f"a summary without a timestamped Value ({str(entry)[:80]})", web_id)
            check_errors(value, f"the {entry.get('Type')} summary", web_id)
            raw = value.get("Value")
            rows["web_id"].append(web_id)
            rows["summary_type"].append(entry.get("Type"))
            rows["timestamp"].append(value.get("Timestamp"))
            is_number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
            rows["value"].append(float(raw) if is_number else None)
            if isinstance(raw, dict):
                rows["value_text"].append(raw.get("Name"))
            else:
                rows["value_text"].append(None if is_number or raw is None else str(raw))
            good = value.get("Good", True)
            rows["good"].append(good.lower() == "true" if isinstance(good, str) else bool(good))
            rows["units"].append(value.get("UnitsAbbreviation") or item.get("UnitsAbbreviation") or "")
    ts = parse_timestamps(rows.pop("timestamp"))
    frame = pl.DataFrame(rows, schema={k: v for k, v in SUMMARY_SCHEMA.items() if k != "timestamp"})
    return frame.with_columns(ts).select(list(SUMMARY_SCHEMA))


def decode_timed_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """One TimedValue → the value columns shared by VALUES_SCHEMA and EF_ATTRIBUTES_SCHEMA (slow path, small data)."""
    return decode_timed_values([value])[0]


def decode_timed_values(values: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """TimedValues of different streams → their value columns (as decode_timed_value), decoded in one pass."""
    if not values:
        return []
    frame = values_frame([StreamChunk(str(i), [dict(v)]) for i, v in enumerate(values)])
    keys = [k for k in EF_ATTRIBUTES_SCHEMA if k in frame.columns and k != "web_id"]
    return list(frame.select(keys).iter_rows(named=True))
