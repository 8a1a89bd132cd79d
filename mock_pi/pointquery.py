"""The PI point query language of GET points/search (PI Web API GetPointsBySearch, AF SDK PIPointQuery).

    Query        = AndCondition { "OR" AndCondition }
    AndCondition = Filter { ("AND" | whitespace) Filter } | "(" Filter { ("AND" | whitespace) Filter } ")"
    Filter       = Value                        (= Tag:=Value)
                 | Attribute Operator Value     (a PI point attribute or alias, case-insensitive)
                 | ValueFilter Operator Value   (Value, TimeStamp, IsGood, Questionable, Substituted, Annotated)
    Operator     = ":" | ":=" | ":<>" | ":<" | ":<=" | ":>" | ":>="
    Value        = '…' | "…" (a doubled or backslash-escaped quote inside) | an unquoted run (\\c = a literal c)

AND binds tighter than OR; parentheses only enclose a whole AND condition; a filter name appears at most once per
AND condition; value filters cannot be combined with OR. In `=` and `<>`, `*` and `?` are wildcards (whole value,
case-insensitive) unless escaped. `parse_point_query` returns a PointQuery or raises QueryError (PI answers 400).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mock_pi.pitime import parse_time

# AF SDK aliases of PI point attribute names ("Syntax for PI point searches").
ALIASES = {"name": "tag", "datatype": "pointtype", "description": "descriptor", "pointclass": "ptclassname"}
# Filters on the point's current (snapshot) value; their kinds as `_test` understands them.
VALUE_FILTERS = {
    "value": "value",
    "timestamp": "time",
    "isgood": "bool",
    "questionable": "bool",
    "substituted": "bool",
    "annotated": "bool",
}
SEARCH_OPTIONS = {"contains": 1, "exactmatch": 2, "startswith": 3, "endswith": 4}
_OPERATORS = (":<>", ":<=", ":>=", ":<", ":>", ":=", ":")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_FLOAT_TYPES = "float(16|32|64)"


class QueryError(ValueError):
    """A query PI rejects; the message is the 400 body's error text."""


@dataclass(frozen=True)
class Text:
    """A filter value: each character with whether it is literal (escaped or quoted) or may be a wildcard."""

    chars: tuple[tuple[str, bool], ...]

    @property
    def plain(self) -> str:
        return "".join(c for c, _ in self.chars)

    @property
    def has_wildcard(self) -> bool:
        return any(c in "*?" and not literal for c, literal in self.chars)

    def regex(self) -> re.Pattern[str]:
        parts = (
            ".*" if c == "*" and not lit else "." if c == "?" and not lit else re.escape(c)
            for c, lit in self.chars
        )
        return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Condition:
    """One compiled filter: `name` is the canonical attribute (or value filter) the route's accessor answers."""

    name: str
    label: str
    op: str
    test: Callable[[Any], bool]


@dataclass(frozen=True)
class PointQuery:
    """AND groups ORed together; no groups means every point."""

    groups: tuple[tuple[Condition, ...], ...]

    @property
    def uses_values(self) -> bool:
        return any(c.name in VALUE_FILTERS for g in self.groups for c in g)

    def matches(self, get: Callable[[str], Any]) -> bool:
        """`get(name)` answers a canonical attribute name or a value-filter name for the candidate point."""
        if not self.groups:
            return True
        return any(all(c.test(get(c.name)) for c in group) for group in self.groups)


@dataclass(frozen=True)
class _Raw:
    label: str | None  # None: a bare value (Tag:=)
    op: str
    value: Text
    quoted: bool


# ------------------------------------------------------------------------------------------------ parsing


def parse_point_query(
    text: str | None,
    attributes: Mapping[str, str],
    *,
    now_us: int,
    search_name_and_descriptor: bool = False,
    search_option: str | None = None,
) -> PointQuery:
    """Parse and compile a query. `attributes` maps PI point attribute names (lower case) to 'text', 'number' or
    'time'; `now_us` anchors relative times (`*-1h`); `search_option` applies to the Tag filter."""
    option = _search_option(search_option)
    try:
        groups = [
            tuple(_compile(raw, attributes, now_us, option, text or "") for raw in group)
            for group in _split(text or "")
        ]
    except QueryError as exc:
        if (text or "") in str(exc):
            raise
        raise QueryError(f"{str(exc).rstrip('.')} (query '{text}').") from None
    for group in groups:
        names = [c.name for c in group]
        for name in names:
            if names.count(name) > 1:
                label = next(c.label for c in group if c.name == name)
                raise QueryError(
                    f"The filter '{label}' appears more than once in one AND condition of the query '{text}'; "
                    "use OR between conditions on the same attribute."
                )
    query = PointQuery(tuple(groups))
    if query.uses_values and len(groups) > 1:
        raise QueryError(f"Value filters cannot be combined with OR (query '{text}').")
    if search_name_and_descriptor:
        extra = []
        for group in groups:
            names = {c.name for c in group}
            if "tag" in names and "descriptor" not in names:
                extra.append(tuple(replace(c, name="descriptor") if c.name == "tag" else c for c in group))
        query = PointQuery((*query.groups, *extra))
    # Cheap tests first: the tag name needs no point object, value filters need an archive read.
    order = {"tag": 0}
    return PointQuery(
        tuple(
            tuple(sorted(g, key=lambda c: order.get(c.name, 2 if c.name in VALUE_FILTERS else 1)))
            for g in query.groups
        )
    )


def _search_option(raw: str | None) -> int:
    if raw is None or raw == "":
        return SEARCH_OPTIONS["exactmatch"]
    if raw.isdigit() and int(raw) in SEARCH_OPTIONS.values():
        return int(raw)
    if raw.lower() in SEARCH_OPTIONS:
        return SEARCH_OPTIONS[raw.lower()]
    raise QueryError(
        f"The value '{raw}' is not valid for searchOption; expected Contains, ExactMatch, StartsWith or EndsWith."
    )


def _split(text: str) -> list[list[_Raw]]:
    """The query's AND conditions, each a list of filters (syntax only)."""
    groups: list[list[_Raw]] = [[]]
    i, n = 0, len(text)
    in_paren = closed = pending_and = False
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        c = text[i]
        word = _keyword(text, i)
        if c == "(":
            if in_paren or groups[-1]:
                raise QueryError(f"Parentheses may only enclose a whole AND condition (query '{text}').")
            in_paren, i = True, i + 1
        elif c == ")":
            if not in_paren:
                raise QueryError(f"Unmatched ')' at position {i + 1} of the query '{text}'.")
            if not groups[-1] or pending_and:
                raise QueryError(f"Expected a filter before ')' at position {i + 1} of the query '{text}'.")
            in_paren, closed, i = False, True, i + 1
        elif word == "OR":
            if in_paren:
                raise QueryError(f"OR is not allowed inside parentheses (query '{text}').")
            if not groups[-1] or pending_and:
                raise QueryError(f"Expected a filter before OR at position {i + 1} of the query '{text}'.")
            groups.append([])
            closed, i = False, i + 2
        elif closed:
            raise QueryError(f"Only OR may follow ')' (position {i + 1} of the query '{text}').")
        elif word == "AND":
            if not groups[-1] or pending_and:
                raise QueryError(f"Expected a filter before AND at position {i + 1} of the query '{text}'.")
            pending_and, i = True, i + 3
        else:
            raw, i = _filter(text, i, in_paren)
            groups[-1].append(raw)
            pending_and = False
    if in_paren:
        raise QueryError(f"Missing ')' in the query '{text}'.")
    if pending_and or (len(groups) > 1 and not groups[-1]):
        raise QueryError(f"The query '{text}' ends with an operator.")
    return [] if groups == [[]] else groups


def _keyword(text: str, i: int) -> str | None:
    for word in ("AND", "OR"):
        end = i + len(word)
        if text[i:end].upper() == word and (end == len(text) or text[end].isspace() or text[end] in "()"):
            return word
    return None


def _filter(text: str, i: int, in_paren: bool) -> tuple[_Raw, int]:
    label: str | None = None
    op = "="
    m = _NAME.match(text, i)
    if m:
        for candidate in _OPERATORS:
            if text.startswith(candidate, m.end()):
                label, op = m.group(), candidate[1:] or "="
                i = m.end() + len(candidate)
                break
    start = i
    value, quoted, i = _value(text, i, in_paren)
    if label is not None and not quoted and not value.chars:
        raise QueryError(f"The filter '{label}' has no value (position {start + 1} of the query '{text}').")
    return _Raw(label, op, value, quoted), i


def _value(text: str, i: int, in_paren: bool) -> tuple[Text, bool, int]:
    """A quoted or unquoted value starting at i → (value, quoted, index after it)."""
    n = len(text)
    chars: list[tuple[str, bool]] = []
    if i < n and text[i] in "'\"":
        quote, start = text[i], i
        i += 1
        while True:
            if i >= n:
                raise QueryError(f"Unterminated {quote} quote at position {start + 1} of the query '{text}'.")
            c = text[i]
            if c == "\\" and i + 1 < n and text[i + 1] in "'\"*?\\":
                chars.append((text[i + 1], True))
                i += 2
            elif c == quote and i + 1 < n and text[i + 1] == quote:
                chars.append((quote, True))
                i += 2
            elif c == quote:
                i += 1
                break
            else:
                chars.append((c, False))
                i += 1
        if i < n and not text[i].isspace() and not (in_paren and text[i] == ")"):
            raise QueryError(
                f"Unexpected '{text[i]}' after a quoted value at position {i + 1} of the query '{text}'."
            )
        return Text(tuple(chars)), True, i
    while i < n and not text[i].isspace() and not (in_paren and text[i] == ")"):
        if text[i] == "\\":
            if i + 1 >= n:
                raise QueryError(f"The query '{text}' ends with an escape character '\\'.")
            chars.append((text[i + 1], True))
            i += 2
        else:
            chars.append((text[i], False))
            i += 1
    return Text(tuple(chars)), False, i


# ------------------------------------------------------------------------------------------------ compiling


def _compile(raw: _Raw, attributes: Mapping[str, str], now_us: int, option: int, query: str) -> Condition:
    label = raw.label or "Tag"
    low = label.lower()
    name = ALIASES.get(low, low)
    if name in VALUE_FILTERS:
        kind = VALUE_FILTERS[name]
    elif name in attributes:
        kind = attributes[name]
    else:
        raise QueryError(f"Unknown PI point attribute '{label}' in the query '{query}'.")
    value = raw.value
    if name == "tag" and raw.op in ("=", "<>") and option != SEARCH_OPTIONS["exactmatch"]:
        star = (("*", False),)
        before = star if option in (SEARCH_OPTIONS["contains"], SEARCH_OPTIONS["endswith"]) else ()
        after = star if option in (SEARCH_OPTIONS["contains"], SEARCH_OPTIONS["startswith"]) else ()
        value = Text(before + value.chars + after)
    return Condition(name, label, raw.op, _test(kind, name, label, raw.op, value, now_us))


def _test(kind: str, name: str, label: str, op: str, value: Text, now_us: int) -> Callable[[Any], bool]:
    """The predicate of one filter on the attribute's actual value."""
    if kind == "bool":
        if op not in ("=",):
            raise QueryError(f"The filter '{label}' only takes ':' or ':='.")
        wanted = _BOOLEANS.get(value.plain.lower())
        if wanted is None:
            raise QueryError(f"The filter '{label}' takes True, False, 1 or 0, not '{value.plain}'.")
        return lambda actual: actual is not None and bool(actual) == wanted
    if kind == "time":
        try:
            at = parse_time(value.plain, now_us)
        except ValueError as exc:
            raise QueryError(
                f"The value '{value.plain}' of the filter '{label}' is not a time: {exc}"
            ) from None
        return lambda actual: actual is not None and _compare(op, actual, at)
    if kind == "number":
        text_test = _text_test(op, value, name)
        if value.has_wildcard and op in ("=", "<>"):
            return lambda actual: text_test(_number_text(actual))
        number = _number(value.plain)
        if number is None:
            raise QueryError(f"The value '{value.plain}' of the filter '{label}' is not a number.")
        return lambda actual: _compare(op, float(actual), number)
    if kind == "value":
        # The snapshot: numbers compare numerically, state names and strings as text.
        text_test = _text_test(op, value, name)
        number = None if value.has_wildcard else _number(value.plain)

        def value_test(actual: Any) -> bool:
            if actual is None:
                return False
            if isinstance(actual, str):
                # A state name or string value: equality as text; no order against a number.
                return text_test(actual) if number is None or op in ("=", "<>") else False
            if number is not None:
                return not math.isnan(actual) and _compare(op, float(actual), number)
            return op in ("=", "<>") and text_test(_number_text(actual))

        return value_test
    return _text_test(op, value, name)


def _text_test(op: str, value: Text, name: str) -> Callable[[Any], bool]:
    if op in ("=", "<>"):
        if name == "pointtype" and not value.has_wildcard and value.plain.lower() == "float":
            # PI reads PointType:Float as Float16, Float32 or Float64.
            rx = re.compile(_FLOAT_TYPES + r"\Z", re.IGNORECASE)
        else:
            rx = value.regex()
        if op == "=":
            return lambda actual: rx.match("" if actual is None else str(actual)) is not None
        return lambda actual: rx.match("" if actual is None else str(actual)) is None
    wanted = value.plain.casefold()
    return lambda actual: _compare(op, ("" if actual is None else str(actual)).casefold(), wanted)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "<>":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _number(text: str) -> float | None:
    low = text.strip().lower()
    if low in ("true", "false"):
        return 1.0 if low == "true" else 0.0
    try:
        number = float(low)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _number_text(actual: Any) -> str:
    number = float(actual)
    return str(int(number)) if number.is_integer() else repr(number)
