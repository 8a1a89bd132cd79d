"""AFSearch query strings (PI Web API "Search Query Syntax") for elements/search and attributes/search.

A query is terms separated by whitespace, all of which must hold: `Field:value`, `Field:=value`, `Field:<>value` or a
bare value (Name). Values may be quoted ('…' or "…") and use AF wildcards (`*`, `?`). An attribute query names the
attributes' parent with a nested element query, `Element:{Name:='P-1*' Template:=Pump} Type:=Double`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from mock_pi.af import Attribute, Element, wildcard
from mock_pi.http import PIHTTPError

Term = tuple[str, bool, str]  # (field, negated, value pattern)
T = TypeVar("T")

SEARCH_TERM = re.compile(
    r"""\s*(?:(?P<field>[A-Za-z]+)\s*:\s*(?P<op>:=|=|<>)?\s*)?(?P<value>"[^"]*"|'[^']*'|\{[^}]*\}|[^\s]+)"""
)
ELEMENT_FIELDS = {
    "name": "Name",
    "description": "Description",
    "template": "Template",
    "category": "Category",
}
ATTRIBUTE_FIELDS = {
    "name": "Name",
    "description": "Description",
    "category": "Category",
    "type": "Type",
    "element": "Element",
    "eventframe": "EventFrame",
}


def _raw_terms(text: str, fields: dict[str, str], unsupported: str) -> list[tuple[str, bool, str]]:
    """(field, negated, raw value with its quotes or braces) per term; 400 for unknown fields or bad syntax."""
    terms: list[tuple[str, bool, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = SEARCH_TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise PIHTTPError(400, f"Cannot parse the search query at '{text[pos:]}'.")
        pos = m.end()
        raw_field = m.group("field")
        field = fields.get((raw_field or "name").lower())
        if field is None:
            raise PIHTTPError(400, f"The search field '{raw_field}' is not supported; {unsupported}")
        terms.append((field, m.group("op") == "<>", m.group("value")))
    return terms


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'{" and len(value) >= 2 else value


def parse_element_query(text: str) -> list[Term]:
    """AFSearch element query → [(field, negated, value pattern)]; 400 for unsupported fields or syntax."""
    raw = _raw_terms(text, ELEMENT_FIELDS, "use Name, Description, Template or Category.")
    return [(field, negated, _unquote(value)) for field, negated, value in raw]


def parse_attribute_query(text: str) -> tuple[list[Term], list[Term]]:
    """AFSearch attribute query → (element terms of its Element:{…} parent, attribute terms); 400 when the parent
    is missing, is an event frame (not implemented) or is not a braced element query."""
    raw = _raw_terms(
        text, ATTRIBUTE_FIELDS, "in an attribute query use Name, Description, Category, Type and Element:{…}."
    )
    parents = [(f, n, v) for f, n, v in raw if f in ("Element", "EventFrame")]
    if any(f == "EventFrame" for f, _, _ in parents):
        raise PIHTTPError(
            400,
            "EventFrame:{…} attribute queries are not implemented by this emulator; query Element:{…} attributes.",
        )
    if len(parents) != 1:
        raise PIHTTPError(
            400,
            "An attribute query must name the attributes' parent once, e.g. \"Element:{Name:='P-1*'} Name:=Flow\".",
        )
    _, negated, value = parents[0]
    if negated or not (value.startswith("{") and value.endswith("}")):
        raise PIHTTPError(
            400,
            f"Element takes a nested element query in braces, e.g. Element:{{Name:='P-1*'}}, not '{value}'.",
        )
    attribute_terms = [(f, n, _unquote(v)) for f, n, v in raw if f not in ("Element", "EventFrame")]
    return parse_element_query(value[1:-1]), attribute_terms


def element_matches(el: Element, field: str, pattern: str) -> bool:
    rx = wildcard(pattern)
    if rx is None:
        return True
    if field == "Template":
        # Like AF, a template condition also matches elements of derived templates.
        return any(rx.match(t.name) for t in el.template.lineage())
    if field == "Category":
        return any(rx.match(c) for c in el.categories)
    return bool(rx.match(el.name if field == "Name" else el.description))


def attribute_matches(a: Attribute, field: str, pattern: str) -> bool:
    rx = wildcard(pattern)
    if rx is None:
        return True
    if field == "Category":
        return any(rx.match(c) for c in a.spec.categories)
    text = {"Name": a.name, "Description": a.spec.description, "Type": a.type}[field]
    return bool(rx.match(text))


def all_hold(terms: list[Term], obj: T, matches: Callable[[T, str, str], bool]) -> bool:
    """Every term holds for obj (a negated term must not match)."""
    return all(matches(obj, field, value) != negated for field, negated, value in terms)
