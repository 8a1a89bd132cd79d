"""GET points/search over real HTTP: the PI point query language as clients send it, paging, limits and errors.

Expected points come from an in-process Catalog (and Archive, for value filters) with the emulator's seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_pi.archive import Archive
from mock_pi.catalog import SPECIAL_POINTS, Catalog, Point
from mock_pi.pitime import parse_time
from mock_pi.serialize import timed_value
from osipi_dagster_tests.emulator import Emulator

NOW = parse_time("2024-05-01T12:00:00Z", 0)
# The characters Equinor's tagreader escapes with a backslash in `name:` and `description:` values.
TAGREADER_SPECIALS = '+-&|(){}[]^"~:\\ '


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(seed=42, tags=500, data_servers=2)


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def servers(emulator: Emulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator.api}/dataservers", timeout=30).json()["Items"])


def escaped(text: str) -> str:
    return "".join("\\" + c if c in TAGREADER_SPECIALS else c for c in text)


def search(http: httpx.Client, server: dict[str, Any], query: str, **params: Any) -> httpx.Response:
    return http.get("/points/search", params={"dataServerWebId": server["WebId"], "query": query, **params})


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["Name"] for item in response.json()["Items"]]


def on_server(catalog: Catalog, server: int, keep: Any) -> list[str]:
    return [catalog.point_at(i).name for i in range(server, 500, 2) if keep(catalog.point_at(i))]


def test_name_condition_as_tagreader_sends_it(http: httpx.Client, servers: list[dict[str, Any]]) -> None:
    body = search(http, servers[0], "name:SINUSOID").json()
    assert [(i["Name"], i["Descriptor"]) for i in body["Items"]] == [("SINUSOID", "12 Hour Sine Wave")]
    assert names(search(http, servers[1], "name:SINUSOID")) == []
    assert names(search(http, servers[0], "name:SINUS*")) == ["SINUSOID"]
    assert names(search(http, servers[1], "description:Atmospheric\\ Tower*")) == ["CDT158"]


def test_every_special_tag_is_found_escaped_quoted_and_bare(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    for i, (name, *_) in enumerate(SPECIAL_POINTS):
        point = catalog.point_at(i)
        home, other = servers[i % 2], servers[1 - i % 2]
        quote = "'" if '"' in name else '"'
        for query in (f"name:{escaped(name)}", f"Tag:={quote}{name}{quote}", f"{quote}{name}{quote}"):
            items = search(http, home, query).json()["Items"]
            assert [(x["Name"], x["WebId"]) for x in items] == [(name, point.web_id)], query
            assert names(search(http, other, query)) == [], query


def test_descriptors_with_quotes_and_brackets(http: httpx.Client, servers: list[dict[str, Any]]) -> None:
    assert names(search(http, servers[0], "description:" + escaped('Flow line 2 "branch B" [FT-207]'))) == [
        "Flow Line 2/B #7 %"
    ]
    assert names(search(http, servers[0], "descriptor:'*\"branch B\"*'")) == ["Flow Line 2/B #7 %"]
    for query in ("descriptor:\"*'north'*\"", "descriptor:'*''north''*'", "descriptor:'*\\'north\\'*'"):
        assert names(search(http, servers[0], query)) == ["Tank 12 (North) Level"], query


def test_attribute_conditions_match_the_catalog(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    def digital_opc(p: Point) -> bool:
        return p.point_type == "Digital" and p.point_source == "OPC"

    assert names(search(http, servers[0], "PointType:Digital PointSource:OPC")) == on_server(
        catalog, 0, digital_opc
    )
    assert names(search(http, servers[1], "datatype:=digital AND pointsource:=opc")) == on_server(
        catalog, 1, digital_opc
    )
    assert names(search(http, servers[0], "span:>1000 engunits:kW")) == on_server(
        catalog, 0, lambda p: p.span > 1000 and p.units == "kW"
    )
    assert names(search(http, servers[1], "pointtype:Float pointid:<=40")) == on_server(
        catalog, 1, lambda p: p.point_type.startswith("Float") and p.id <= 40
    )
    assert names(search(http, servers[0], "tag:<>U* AND step:1")) == on_server(
        catalog, 0, lambda p: not p.name.upper().startswith("U") and p.step
    )
    assert names(search(http, servers[0], "location1:1 ptclassname:classic creationdate:<*")) == on_server(
        catalog, 0, lambda p: True
    )


def test_or_groups_and_parentheses(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    query = "(tag:CDT* AND pointtype:Float32) OR (tag:BA\\:* pointsource:R) OR engunits:ppm"
    assert names(search(http, servers[1], query)) == on_server(
        catalog,
        1,
        lambda p: (
            (p.name.startswith("CDT") and p.point_type == "Float32")
            or (p.name.startswith("BA:") and p.point_source == "R")
            or p.units == "ppm"
        ),
    )


def test_search_name_and_descriptor_and_search_option(
    http: httpx.Client, servers: list[dict[str, Any]]
) -> None:
    assert names(search(http, servers[0], "*Sine*")) == []
    assert names(search(http, servers[0], "*Sine*", searchNameAndDescriptor="true")) == ["SINUSOID"]
    # Two bare values are two Tag filters in one AND condition: PI rejects that.
    assert search(http, servers[0], "Tank 12", searchOption="StartsWith").status_code == 400
    assert names(search(http, servers[0], '"Tank 12"', searchOption="StartsWith")) == [
        "Tank 12 (North) Level"
    ]
    assert names(search(http, servers[1], "Ölpumpe", searchOption="Contains")) == ["Zähler Ölpumpe #2"]


def test_value_filters_read_the_snapshot(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    archive = Archive(42, lambda: NOW)

    def snapshot(p: Point) -> dict[str, Any]:
        return timed_value(archive.snapshot(p), 0, p)

    questionable = on_server(catalog, 0, lambda p: snapshot(p)["Questionable"])
    assert questionable, "the catalog should hold a point whose current value is questionable"
    assert names(search(http, servers[0], "Questionable:true")) == questionable
    assert names(search(http, servers[0], "IsGood:true")) == on_server(
        catalog, 0, lambda p: snapshot(p)["Good"]
    )

    def high_float(p: Point) -> bool:
        value = snapshot(p)["Value"]
        return p.point_type.startswith("Float") and not isinstance(value, dict) and value > 900

    high = on_server(catalog, 1, high_float)
    assert high and names(search(http, servers[1], "Value:>900 pointtype:Float*")) == high
    assert names(search(http, servers[0], "Value:Auto pointtype:digital")) == on_server(
        catalog, 0, lambda p: p.point_type == "Digital" and snapshot(p)["Value"].get("Name") == "Auto"
    )


def test_paging_with_links_and_limits(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    expected = on_server(catalog, 1, lambda p: True)
    url: str | None = "/points/search"
    params: dict[str, Any] | None = {"dataServerWebId": servers[1]["WebId"], "query": "*", "maxCount": 100}
    got: list[str] = []
    while url:
        body = http.get(url, params=params).json()
        got += [i["Name"] for i in body["Items"]]
        url, params = body["Links"].get("Next"), None
    assert got == expected and len(got) == 250
    page = search(http, servers[1], "*", startIndex=200, maxCount=1000)
    assert names(page) == expected[200:]
    assert names(search(http, servers[1], "", maxCount=1000)) == expected  # no query: every point
    too_big = search(http, servers[1], "*", maxCount=1001)
    assert too_big.status_code == 400 and "1000" in too_big.json()["Errors"][0]
    assert search(http, servers[1], "*", startIndex=-1).status_code == 400


def test_selected_fields_web_id_type_and_trailing_slash(
    http: httpx.Client, servers: list[dict[str, Any]], catalog: Catalog
) -> None:
    point = catalog.point_at(1)
    body = search(http, servers[1], "CDT158", selectedFields="Items.Name;Items.WebId").json()
    assert body == {"Items": [{"Name": "CDT158", "WebId": point.web_id}]}
    for kind in ("IDOnly", "PathOnly"):
        item = search(http, servers[1], "CDT158", webIdType=kind).json()["Items"][0]
        assert item["WebId"] == catalog.point_web_id(point, kind)
        assert http.get(f"/points/{item['WebId']}").json()["Name"] == "CDT158"
    # The PI Developers Club client (generated from AVEVA's swagger) calls points/search/ with a trailing slash.
    slash = http.get("/points/search/", params={"dataServerWebId": servers[1]["WebId"], "query": "CDT158"})
    assert names(slash) == ["CDT158"]


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("foo:1", 400, "Unknown PI point attribute 'foo'"),
        ("BA:TEMP.1", 400, "Unknown PI point attribute 'BA'"),
        ("tag:a tag:b", 400, "appears more than once"),
        ("(tag:a", 400, "Missing ')'"),
        ("span:>wide", 400, "not a number"),
        ("tag:a OR IsGood:true", 400, "cannot be combined with OR"),
    ],
)
def test_bad_queries_are_pi_shaped_400s(
    http: httpx.Client, servers: list[dict[str, Any]], query: str, status: int, fragment: str
) -> None:
    response = search(http, servers[0], query)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["Errors"] and fragment in body["Errors"][0] and query in body["Errors"][0]


def test_data_server_is_required_and_must_exist(http: httpx.Client, servers: list[dict[str, Any]]) -> None:
    missing = http.get("/points/search", params={"query": "SINUSOID"})
    assert missing.status_code == 400 and "dataServerWebId" in missing.json()["Errors"][0]
    unknown = http.get("/points/search", params={"dataServerWebId": "F1DSnope", "query": "SINUSOID"})
    assert unknown.status_code == 404 and "F1DSnope" in unknown.json()["Errors"][0]
    bad_option = search(http, servers[0], "SINUSOID", searchOption="Fuzzy")
    assert bad_option.status_code == 400 and "searchOption" in bad_option.json()["Errors"][0]
