"""Unit tests of the PI point query language (mock_pi.pointquery): syntax, escapes, precedence, operators, errors."""

from __future__ import annotations

from typing import Any

import pytest

from mock_pi.pitime import parse_time
from mock_pi.pointquery import PointQuery, QueryError, parse_point_query

NOW = parse_time("2024-05-01T12:00:00Z", 0)
KINDS = {"tag": "text", "descriptor": "text", "pointtype": "text", "pointsource": "text", "span": "number",
         "pointid": "number", "step": "number", "creationdate": "time", "ptclassname": "text"}  # fmt: skip

POINTS: list[dict[str, Any]] = [
    {"tag": "SINUSOID", "descriptor": "12 Hour Sine Wave", "pointtype": "Float32", "pointsource": "R", "span": 100,
     "pointid": 1, "step": 0, "creationdate": parse_time("2020-01-01", 0), "value": 42.5, "isgood": True},
    {"tag": "CDT158", "descriptor": "Atmospheric Tower OH Vapor", "pointtype": "Float64", "pointsource": "R",
     "span": 220, "pointid": 2, "step": 0, "creationdate": parse_time("2023-06-01", 0), "value": 7.0, "isgood": False},
    {"tag": "Batch ID R-101+102 & Spare", "descriptor": 'Batch "B*" [x] it\'s', "pointtype": "String",
     "pointsource": "L", "span": 0, "pointid": 3, "step": 1, "creationdate": parse_time("2020-01-01", 0),
     "value": "B-17", "isgood": True},
    {"tag": "BA:TEMP.1", "descriptor": "Batch reactor temperature", "pointtype": "Float32", "pointsource": "OPC",
     "span": 240.5, "pointid": 4, "step": 0, "creationdate": parse_time("2020-01-01", 0), "value": "I/O Timeout",
     "isgood": False},
    {"tag": "Tank 12 (North) Level", "descriptor": "Tank *12*", "pointtype": "Int32", "pointsource": "MODBUS",
     "span": 100, "pointid": 5, "step": 1, "creationdate": parse_time("2020-01-01", 0), "value": 3,
     "isgood": True},
]  # fmt: skip
for _p in POINTS:
    _p["ptclassname"] = "classic"


def compile_query(text: str | None, **kw: Any) -> PointQuery:
    return parse_point_query(text, KINDS, now_us=NOW, **kw)


def ids(text: str | None, **kw: Any) -> list[int]:
    query = compile_query(text, **kw)
    return [p["pointid"] for p in POINTS if query.matches(p.get)]


def error(text: str, **kw: Any) -> str:
    with pytest.raises(QueryError) as exc:
        compile_query(text, **kw)
    return str(exc.value)


def test_empty_query_matches_everything_and_bare_value_is_the_tag() -> None:
    assert ids(None) == ids("") == ids("   ") == [1, 2, 3, 4, 5]
    assert ids("sinusoid") == ids("SIN*") == ids("s?nusoid") == [1]
    assert ids("*") == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("op", [":", ":="])
@pytest.mark.parametrize("name", ["tag", "Tag", "NAME", "name"])
def test_equality_operators_and_tag_aliases(op: str, name: str) -> None:
    assert ids(f"{name}{op}cdt158") == [2]


def test_aliases_of_other_attributes() -> None:
    assert ids("DataType:Float32") == ids("pointtype:float32") == [1, 4]
    assert ids("Description:*Sine*") == ids("descriptor:*sine*") == [1]
    assert ids("PointClass:classic") == [1, 2, 3, 4, 5]


def test_not_equal_and_wildcards() -> None:
    assert ids("tag:<>SIN*") == [2, 3, 4, 5]
    assert ids("pointsource:<>R") == [3, 4, 5]
    assert ids("descriptor:*a*") == [1, 2, 3, 4, 5]


def test_ordering_operators_on_numbers_text_and_times() -> None:
    assert ids("span:>100") == [2, 4]
    assert ids("span:>=100") == [1, 2, 4, 5]
    assert ids("span:<100") == [3]
    assert ids("span:<=100 pointid:<>5") == [1, 3]
    assert ids("span:240.5") == [4]
    assert ids("step:True") == ids("step:1") == [3, 5]
    assert ids("pointsource:<M") == [3]  # case-insensitive text order: L < M < OPC, R
    assert ids("creationdate:>2022-01-01") == [2]
    assert ids("creationdate:<*-1000d") == [1, 3, 4, 5]
    assert ids("span:1*") == [1, 5]  # wildcards in a number compare its text


def test_pointtype_float_means_every_float_type() -> None:
    assert ids("pointtype:Float") == [1, 2, 4]
    assert ids("pointtype:<>float") == [3, 5]


def test_and_binds_tighter_than_or() -> None:
    # a OR (b AND c), not (a OR b) AND c.
    assert ids("tag:SINUSOID OR pointsource:R span:>200") == [1, 2]
    assert ids("tag:SINUSOID OR pointsource:R AND span:>200") == [1, 2]
    assert ids("pointsource:R span:>200 OR tag:Tank*") == [2, 5]
    assert ids("(tag:sin* AND pointtype:Float32) OR (tag:cdt* pointtype:Float64)") == [1, 2]
    assert ids("(tag:sin*) or (tag:ba\\:*)") == [1, 4]  # keywords are case-insensitive
    assert ids("pointtype:Float32 and pointsource:OPC") == [4]


def test_keywords_only_as_whole_words() -> None:
    assert ids("ORBIT OR ANDES") == []
    assert ids("tag:*OR*") == [5]  # North
    assert ids('"OR"') == []


def test_backslash_escapes_in_unquoted_values() -> None:
    # What Equinor's tagreader sends: spaces and + - & | ( ) { } [ ] ^ " ~ : \ escaped, wildcards left alone.
    assert ids(r"name:Batch\ ID\ R\-101\+102\ \&\ Spare") == [3]
    assert ids(r"name:Tank\ 12\ \(North\)\ Level") == [5]
    assert ids(r"name:BA\:TEMP.1") == [4]
    assert ids(r"name:Tank\ 12*") == [5]
    assert ids(r"descriptor:Batch\ \"B\*\"\ \[x\]\ it's") == [3]
    assert ids(r"descriptor:Tank\ \*12\*") == [5]  # escaped wildcards are literal
    assert ids(r"descriptor:Tank\ \*1\*") == []


def test_quoted_values() -> None:
    assert ids('tag:"Tank 12 (North) Level"') == ids("tag:'tank 12 (north) level'") == [5]
    assert ids('"Batch ID R-101+102 & Spare"') == [3]
    assert ids("descriptor:'Batch \"B*\" [x] it''s'") == [3]  # '' is a quote inside '…'
    assert ids("descriptor:'Batch \"B*\" [x] it\\'s'") == [3]
    assert ids('descriptor:"Batch ""B*"" [x] it\'s"') == [3]
    assert ids('descriptor:"Batch \\"B\\*\\" [x] it\'s"') == [3]
    assert ids('descriptor:"Tank *"') == [5]  # wildcards work inside quotes
    assert ids('descriptor:"Tank \\*12\\*"') == [5]
    assert ids('descriptor:"*" pointid:<3') == [1, 2]
    assert ids('descriptor:""') == []
    assert ids("(tag:'Tank 12 (North) Level')") == [5]


def test_parenthesised_group_ends_an_unquoted_value() -> None:
    assert ids("(tag:sinusoid)") == [1]
    assert ids("(tag:Tank\\ 12\\ \\(North\\)\\ Level) OR (tag:cdt158)") == [2, 5]
    # Outside parentheses a ')' is an ordinary character.
    assert ids(r"tag:Tank\ 12\ (North)\ Level") == [5]


def test_value_filters() -> None:
    assert ids("IsGood:false") == [2, 4]
    assert ids("isgood:'True' pointtype:Float*") == [1]
    assert ids("Value:>10") == [1]
    assert ids("Value:7") == [2]
    assert ids("Value:B-*") == [3]
    assert ids('Value:"I/O Timeout"') == [4]
    assert ids("value:>1") == [1, 2, 5]  # state names and strings have no order against a number


def test_search_option_applies_to_the_tag_filter() -> None:
    assert ids("sin", search_option="StartsWith") == [1]
    assert ids("LEVEL", search_option="endswith") == [5]
    assert ids("12", search_option="Contains") == [5]
    assert ids("12", search_option="1") == [5]
    assert ids("12", search_option="ExactMatch") == []
    assert ids("descriptor:Tank", search_option="StartsWith") == []
    assert "searchOption" in error("x", search_option="Fuzzy")


def test_search_name_and_descriptor() -> None:
    assert ids("*sine*") == []
    assert ids("*sine*", search_name_and_descriptor=True) == [1]
    assert ids("*tower* pointid:<3", search_name_and_descriptor=True) == [2]
    # Not applied when the query names the descriptor itself.
    assert ids("tag:*temp* descriptor:*", search_name_and_descriptor=True) == [4]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("foo:1", "Unknown PI point attribute 'foo'"),
        ("BA:TEMP.1", "Unknown PI point attribute 'BA'"),
        ("tag:a name:b", "'tag' appears more than once"),
        ("sin* cdt*", "'Tag' appears more than once"),
        ("tag:", "has no value"),
        ("tag:a OR", "ends with an operator"),
        ("tag:a AND", "ends with an operator"),
        ("OR tag:a", "before OR"),
        ("tag:a AND AND tag:b", "before AND"),
        ("(tag:a", "Missing ')'"),
        (") tag:a", "Unmatched ')'"),
        ("((tag:a))", "Parentheses"),
        ("tag:a (pointid:1)", "Parentheses"),
        ("(tag:a OR tag:b)", "OR is not allowed inside parentheses"),
        ("(tag:a) pointid:1", "Only OR may follow ')'"),
        ("()", "before ')'"),
        ("tag:'abc", "Unterminated"),
        ("tag:'a'b", "after a quoted value"),
        ("tag:abc\\", "escape character"),
        ("span:>big", "not a number"),
        ("creationdate:>notatime", "not a time"),
        ("IsGood:maybe", "True, False, 1 or 0"),
        ("IsGood:<>true", "only takes"),
        ("tag:a OR Value:>1", "cannot be combined with OR"),
    ],
)
def test_rejected_queries_name_the_problem(text: str, fragment: str) -> None:
    assert fragment in error(text)
