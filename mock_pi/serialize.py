"""PI Web API JSON for time-series values: TimedValue fragments built from numpy columns, and selectedFields.

Hot paths build JSON text from per-column string lists (no per-value dicts); dict helpers serve the AF routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import polars as pl

from mock_pi.archive import Values
from mock_pi.catalog import SYSTEM_STATES, Point

# From this many values, column-wise serialisation (polars) beats per-value string building despite its set-up cost.
_COLUMNWISE_FROM = 256
VALUE_FIELDS = ("Timestamp", "Value", "UnitsAbbreviation", "Good", "Questionable", "Substituted", "Annotated")


def _js(text: str) -> str:
    return orjson.dumps(text).decode("utf-8")


# --- selectedFields ------------------------------------------------------------------------------------------------


class FieldSelector:
    """PI `selectedFields`: semicolon-separated dotted paths; a field stays if it lies on or under a selected path."""

    def __init__(self, spec: str | None) -> None:
        paths = [p.strip() for p in (spec or "").split(";") if p.strip()]
        self.paths = [tuple(part.lower() for part in p.split(".")) for p in paths] or None

    @property
    def everything(self) -> bool:
        return self.paths is None

    def keeps(self, path: Sequence[str]) -> bool:
        if self.paths is None:
            return True
        low = tuple(p.lower() for p in path)
        return any(sel[: len(low)] == low or low[: len(sel)] == sel for sel in self.paths)

    def whole(self, path: Sequence[str]) -> bool:
        """True when everything under `path` is selected."""
        if self.paths is None:
            return True
        low = tuple(p.lower() for p in path)
        return any(low[: len(sel)] == sel for sel in self.paths)

    def value_fields(self, prefix: Sequence[str]) -> tuple[str, ...]:
        """Which TimedValue fields to emit for values found under `prefix` (e.g. ("Items",))."""
        if self.whole(prefix):
            return VALUE_FIELDS
        return tuple(f for f in VALUE_FIELDS if self.keeps((*prefix, f)))

    def apply(self, obj: Any, path: tuple[str, ...] = ()) -> Any:
        if self.paths is None or (self.whole(path) and path):
            return obj
        if isinstance(obj, dict):
            return {k: self.apply(v, (*path, k)) for k, v in obj.items() if self.keeps((*path, k))}
        if isinstance(obj, list):
            return [self.apply(v, path) for v in obj]
        return obj


ALL_FIELDS = FieldSelector(None)

# --- timestamps ----------------------------------------------------------------------------------------------------


def _timestamp_list(ts_us: np.ndarray) -> list[str]:
    """UTC ISO strings with 'Z'; fractional seconds only when present, trailing zeros trimmed."""
    if not len(ts_us):
        return []
    if not (ts_us % 1_000_000).any():
        text = np.datetime_as_string(ts_us.astype("M8[us]").astype("M8[s]"), unit="s").tolist()
        return [t + "Z" for t in text]
    if not (ts_us % 1_000).any():
        text = np.datetime_as_string(ts_us.astype("M8[us]").astype("M8[ms]"), unit="ms").tolist()
        return [t[:-4] + "Z" if t[-3:] == "000" else t.rstrip("0") + "Z" for t in text]
    text = np.datetime_as_string(ts_us.astype("M8[us]"), unit="us").tolist()
    return [t[:-7] + "Z" if t[-6:] == "000000" else t.rstrip("0") + "Z" for t in text]


def format_timestamps(ts_us: np.ndarray) -> list[str]:
    """UTC ISO strings with 'Z'; fractional seconds only when present, trailing zeros trimmed (as PI writes)."""
    return _timestamp_list(ts_us)


# --- values --------------------------------------------------------------------------------------------------------


def digital_value(code: int, point: Point | None, is_system: bool) -> dict[str, Any]:
    if is_system or point is None or point.digital_set is None:
        return {"Name": SYSTEM_STATES.get(code, f"State {code}"), "Value": code, "IsSystem": True}
    return {
        "Name": point.digital_set.names_by_code.get(code, f"State {code}"),
        "Value": code,
        "IsSystem": False,
    }


def _json_list_items(items: list[Any]) -> list[str]:
    """JSON texts of scalar items via one orjson call (NaN → null); items must not contain commas."""
    if not items:
        return []
    return orjson.dumps(items).decode()[1:-1].split(",")


def _value_list(values: Values, point: Point) -> list[str]:
    n = len(values)
    ptype = point.point_type
    if point.is_integer:
        out = _json_list_items(np.where(np.isnan(values.value), 0, values.value).astype(np.int64).tolist())
    elif point.is_numeric:
        out = _json_list_items(values.value.tolist())
    elif ptype == "Digital" and point.digital_set is not None:
        cache: dict[int, str] = {}
        out = []
        for code in values.digital_code.tolist():
            frag = cache.get(code)
            if frag is None:
                frag = cache[code] = orjson.dumps(digital_value(code, point, False)).decode()
            out.append(frag)
    elif values.text is not None:
        out = [orjson.dumps(t).decode() for t in values.text.tolist()]
    else:
        out = ["null"] * n
    if values.is_system.any():
        for i in np.flatnonzero(values.is_system).tolist():
            out[i] = orjson.dumps(digital_value(int(values.digital_code[i]), point, True)).decode()
    return out


_FLAG_NAMES = ("Good", "Questionable", "Substituted", "Annotated")


def _flag_code(values: Values) -> np.ndarray:
    """The four quality flags of each value as one number 0..15 (bit i = _FLAG_NAMES[i])."""
    return (
        values.good.astype(np.int64)
        | (values.questionable.astype(np.int64) << 1)
        | (values.substituted.astype(np.int64) << 2)
        | (values.annotated.astype(np.int64) << 3)
    )


def _flag_texts(flags: Sequence[str]) -> list[str]:
    """JSON text of the selected `flags` for each flag code 0..15, e.g. '"Good":true,"Questionable":false'."""
    return [
        ",".join(f'"{f}":{"true" if (combo >> _FLAG_NAMES.index(f)) & 1 else "false"}' for f in flags)
        for combo in range(16)
    ]


def _fragment_list(values: Values, point: Point, fields: Sequence[str], units: str) -> list[str]:
    n = len(values)
    columns: list[list[str]] = []
    if "Timestamp" in fields:
        columns.append(['"Timestamp":"' + t + '"' for t in _timestamp_list(values.ts_us)])
    if "Value" in fields:
        columns.append(['"Value":' + v for v in _value_list(values, point)])
    tail_parts: list[str] = []
    if "UnitsAbbreviation" in fields:
        tail_parts.append('"UnitsAbbreviation":' + _js(units))
    flags = [f for f in _FLAG_NAMES if f in fields]
    if tail_parts or flags:
        tails = [",".join(tail_parts + ([combo] if combo else [])) for combo in _flag_texts(flags)]
        columns.append([tails[c] for c in _flag_code(values).tolist()] if flags else [tails[0]] * n)
    if not columns:
        return ["{}"] * n
    if len(columns) == 1:
        return ["{" + a + "}" for a in columns[0]]
    if len(columns) == 2:
        return ["{" + a + "," + b + "}" for a, b in zip(columns[0], columns[1], strict=True)]
    if len(columns) == 3:
        return [f"{{{a},{b},{c}}}" for a, b, c in zip(columns[0], columns[1], columns[2], strict=True)]
    return ["{" + ",".join(parts) + "}" for parts in zip(*columns, strict=True)]


def timed_value_fragments(
    values: Values, point: Point, fields: Sequence[str] = VALUE_FIELDS, units: str | None = None
) -> list[str]:
    """One JSON object text per value, keeping only `fields` (TimedValue field names)."""
    if len(values) == 0:
        return []
    return _fragment_list(values, point, fields, point.units if units is None else units)


def timed_values_text(
    values: Values, point: Point, fields: Sequence[str] = VALUE_FIELDS, units: str | None = None
) -> str:
    """The TimedValues as JSON array text: '[{...},{...}]'."""
    if len(values) >= _COLUMNWISE_FROM:
        offsets = np.array([0, len(values)], dtype=np.int64)
        return timed_values_texts(
            values, offsets, [point], [point.units if units is None else units], fields
        )[0]
    return "[" + ",".join(timed_value_fragments(values, point, fields, units)) + "]"


def timed_values_texts(
    values: Values,
    offsets: np.ndarray,
    points: Sequence[Point],
    units: Sequence[str],
    fields: Sequence[str] = VALUE_FIELDS,
) -> list[str]:
    """`timed_values_text` for many streams at once: stream i is values[offsets[i]:offsets[i + 1]] of points[i].

    The same JSON text as one call per stream, built column-wise with polars (timestamps, numbers, flag tails and
    the per-stream joins run in Rust); only digital, system and text values are formatted one by one.
    """
    m = len(points)
    n = len(values)
    if n == 0:
        return ["[]"] * m
    stream = np.repeat(np.arange(m), np.diff(offsets))
    parts: list[pl.Expr | pl.Series] = []
    if "Timestamp" in fields:
        text = pl.Series(values.ts_us).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
        parts += [pl.lit('"Timestamp":"'), text.str.replace(r"(\.\d*[1-9])0+$", "${1}"), pl.lit('Z"')]
    if "Value" in fields:
        parts += [pl.lit(',"Value":' if parts else '"Value":'), _value_texts(values, points, stream)]
    tail = _tail_texts(values, units, stream, fields)
    if tail is not None:
        parts += [pl.lit("," if parts else ""), tail]
    if not parts:
        return ["[" + ",".join(["{}"] * int(c)) + "]" for c in np.diff(offsets)]
    frame = pl.DataFrame({"stream": stream}).with_columns(
        pl.concat_str([pl.lit("{"), *parts, pl.lit("}")]).alias("item")
    )
    joined = frame.group_by("stream", maintain_order=True).agg(pl.col("item").str.join(","))
    out = ["[]"] * m
    for i, body in zip(joined["stream"].to_list(), joined["item"].to_list(), strict=True):
        out[i] = "[" + body + "]"
    return out


def _value_texts(values: Values, points: Sequence[Point], stream: np.ndarray) -> pl.Series:
    """Value JSON per event: numbers column-wise; digital states, system states and text one by one."""
    kind = np.array([0 if p.is_integer else 1 if p.is_numeric else 2 for p in points], dtype=np.int8)[stream]
    numbers = np.where(np.isnan(values.value), 0, values.value)
    out = pl.select(
        pl.when(pl.Series(kind == 0))
        .then(pl.Series(numbers.astype(np.int64)).cast(pl.String))
        .otherwise(pl.Series(values.value).cast(pl.String))
    ).to_series()
    special = np.flatnonzero((kind == 2) | values.is_system)
    if len(special):
        frags = []
        for i in special.tolist():
            point = points[stream[i]]
            one = values.take(slice(i, i + 1))
            frags.append(_value_list(one, point)[0])
        out = out.scatter(special, frags)
    return out


def _tail_texts(
    values: Values, units: Sequence[str], stream: np.ndarray, fields: Sequence[str]
) -> pl.Series | None:
    """UnitsAbbreviation and the quality flags of each event as one JSON text fragment, or None if none selected."""
    flags = [f for f in _FLAG_NAMES if f in fields]
    with_units = "UnitsAbbreviation" in fields
    if not flags and not with_units:
        return None
    flag_text = pl.Series(_flag_texts(flags))[_flag_code(values)]
    if not with_units:
        return flag_text
    unit_text = pl.Series(['"UnitsAbbreviation":' + _js(u) for u in units])[stream]
    return pl.concat_str([unit_text, flag_text], separator="," if flags else "")


def timed_values(values: Values, point: Point, selected: FieldSelector | None = None) -> list[dict[str, Any]]:
    """TimedValues as dicts (for callers that assemble bodies with orjson); `selected` applies at item level."""
    fields = VALUE_FIELDS if selected is None else selected.value_fields(())
    return [orjson.loads(frag) for frag in timed_value_fragments(values, point, fields)]


def timed_value(
    values: Values, index: int, point: Point, selected: FieldSelector | None = None
) -> dict[str, Any]:
    """The TimedValue at `index` of `values` as a dict."""
    return timed_values(values.take(slice(index, index + 1)), point, selected)[0]


def stream_item(
    point: Point,
    web_id: str,
    name: str,
    path: str,
    items: list[dict[str, Any]] | dict[str, Any],
    links: dict[str, str],
    *,
    key: str = "Items",
) -> dict[str, Any]:
    """A stream-set item: {WebId, Name, Path, Links, Items|Value, UnitsAbbreviation}."""
    return {
        "WebId": web_id,
        "Name": name,
        "Path": path,
        "Links": links,
        key: items,
        "UnitsAbbreviation": point.units,
    }


def stream_item_json(header: dict[str, Any], body_key: str, body_json: str | None, units: str | None) -> str:
    """Stream-set item text from a (pre-filtered) header dict, the Items/Value JSON text and units."""
    parts = [orjson.dumps(header).decode()[1:-1]] if header else []
    if body_json is not None:
        parts.append(f'"{body_key}":{body_json}')
    if units is not None:
        parts.append('"UnitsAbbreviation":' + _js(units))
    return "{" + ",".join(p for p in parts if p) + "}"
