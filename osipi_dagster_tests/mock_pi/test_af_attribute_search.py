"""AF attribute searches over real HTTP: FindElementAttributes (assetdatabases/{webId}/elementattributes and
elements/{webId}/elementattributes) and GetAttributesQuery (attributes/search), against expectations computed here
by walking the in-process AF model of the same seed with fnmatch."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mock_pi.af import Attribute, Element
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.mock_pi.af_expected import get, model


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def plant(http: httpx.Client) -> dict[str, Any]:
    server = get(http, "/assetservers")["Items"][0]
    return get(http, server["Links"]["Databases"])["Items"][0]


def like(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def under(children: list[Element], full: bool) -> list[Element]:
    if not full:
        return list(children)
    out: list[Element] = []

    def walk(el: Element) -> None:
        out.append(el)
        for child in el.children:
            walk(child)

    for el in children:
        walk(el)
    return out


def every_attribute(el: Element) -> list[Attribute]:
    out: list[Attribute] = []

    def walk(a: Attribute) -> None:
        out.append(a)
        for child in a.children:
            walk(child)

    for a in model().attributes(el):
        walk(a)
    return out


def expected_paths(
    children: list[Element],
    full: bool,
    element: Callable[[Element], bool] = lambda e: True,
    attribute: Callable[[Attribute], bool] = lambda a: True,
) -> list[str]:
    """Matching attributes sorted by name, case-insensitively, ties in hierarchy order (AF's default Name sort)."""
    found = [a for el in under(children, full) if element(el) for a in every_attribute(el) if attribute(a)]
    return [a.path for a in sorted(found, key=lambda a: a.name.lower())]


def all_pages(http: httpx.Client, url: str, **params: Any) -> list[dict[str, Any]]:
    """Follow Links.Next from a first page of `maxCount` items."""
    body = get(http, url, **params)
    items = list(body["Items"])
    while "Next" in body["Links"]:
        body = get(http, body["Links"]["Next"])
        items += body["Items"]
    return items


def paths(items: list[dict[str, Any]]) -> list[str]:
    return [i["Path"] for i in items]


def test_database_search_over_the_whole_hierarchy_by_template_and_name(
    http: httpx.Client, plant: dict[str, Any]
) -> None:
    db = model().databases[0]
    url = f"/assetdatabases/{plant['WebId']}/elementattributes"
    # A base template matches elements of derived templates (Pump, Compressor, … are Equipment).
    found = all_pages(
        http,
        url,
        searchFullHierarchy="true",
        elementTemplate="equipment",
        attributeNameFilter="*Temp*",
        maxCount=40,
    )
    expected = expected_paths(
        db.roots, True, lambda e: e.template.is_a("Equipment"), lambda a: like("*temp*", a.name)
    )
    assert len(expected) > 40 and paths(found) == expected
    assert len({model().attribute_by_path(p).owner.template.name for p in expected}) >= 2
    one = found[0]
    assert one == get(http, f"/attributes/{one['WebId']}")


def test_without_full_hierarchy_only_the_roots_children_are_searched(
    http: httpx.Client, plant: dict[str, Any]
) -> None:
    db = model().databases[0]
    top = get(http, f"/assetdatabases/{plant['WebId']}/elementattributes")
    assert paths(top["Items"]) == expected_paths(db.roots, False) and top["Items"]
    unit = next(e for e in db.elements if e.template.name == "Unit")
    body = get(http, f"/elements/{unit.web_id}/elementattributes")
    assert paths(body["Items"]) == expected_paths(unit.children, False)
    assert unit.path not in {p.split("|")[0] for p in paths(body["Items"])}
    full = get(http, f"/elements/{unit.web_id}/elementattributes", searchFullHierarchy="true")
    assert paths(full["Items"]) == expected_paths(unit.children, True)
    assert len(full["Items"]) > len(body["Items"])


@pytest.mark.parametrize(
    ("params", "element", "attribute"),
    [
        ({"attributeCategory": "LIMITS"}, None, lambda a: "Limits" in a.spec.categories),
        ({"attributeType": "int32"}, None, lambda a: a.type == "Int32"),
        ({"attributeType": "EnumerationValue"}, None, lambda a: a.type == "EnumerationValue"),
        (
            {"attributeDescriptionFilter": "*superseded"},
            None,
            lambda a: like("*superseded", a.spec.description),
        ),
        ({"elementNameFilter": "P-1?1*"}, lambda e: like("p-1?1*", e.name), None),
        ({"elementDescriptionFilter": "Drive motor*"}, lambda e: like("drive motor*", e.description), None),
        ({"elementCategory": "Metering"}, lambda e: "Metering" in e.categories, None),
        (
            {"elementTemplate": "Motor", "attributeNameFilter": "?ower*"},
            lambda e: e.template.name == "Motor",
            lambda a: like("?ower*", a.name),
        ),
    ],
)
def test_filters(
    http: httpx.Client,
    plant: dict[str, Any],
    params: dict[str, str],
    element: Callable[[Element], bool] | None,
    attribute: Callable[[Attribute], bool] | None,
) -> None:
    db = model().databases[0]
    expected = expected_paths(db.roots, True, element or (lambda e: True), attribute or (lambda a: True))
    found = all_pages(
        http,
        f"/assetdatabases/{plant['WebId']}/elementattributes",
        searchFullHierarchy="true",
        maxCount=1000,
        **params,
    )
    assert expected and paths(found) == expected


def test_sorting_and_paging(http: httpx.Client, plant: dict[str, Any]) -> None:
    url = f"/assetdatabases/{plant['WebId']}/elementattributes"
    query = {"searchFullHierarchy": "true", "elementTemplate": "Pump"}
    ascending = paths(all_pages(http, url, **query))
    descending = paths(all_pages(http, url, **query, sortOrder="Descending"))
    names = [p.rsplit("|", 1)[1].lower() for p in descending]
    assert names == sorted(names, reverse=True) and sorted(descending) == sorted(ascending)
    by_description = all_pages(http, url, **query, sortField="Description", selectedFields="Items.Path;Links")
    described = [model().attribute_by_path(i["Path"]).spec.description.lower() for i in by_description]
    assert described == sorted(described)
    by_type = [
        i["Type"] for i in all_pages(http, url, **query, sortField="type", selectedFields="Items.Type;Links")
    ]
    assert by_type == sorted(by_type, key=str.lower) and len(set(by_type)) >= 4
    page = get(http, url, **query, startIndex=5, maxCount=4)
    assert paths(page["Items"]) == ascending[5:9]
    assert set(page["Links"]) == {"First", "Previous", "Next", "Last"}


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"attributeType": "Float"}, 400, "attributeType"),
        ({"sortField": "StartTime"}, 400, "sortField"),
        ({"sortOrder": "Sideways"}, 400, "sortOrder"),
        ({"searchFullHierarchy": "perhaps"}, 400, "searchFullHierarchy"),
        ({"maxCount": "-1"}, 400, "maxCount"),
    ],
)
def test_bad_parameters(
    http: httpx.Client, plant: dict[str, Any], params: dict[str, str], status: int, fragment: str
) -> None:
    response = http.get(f"/assetdatabases/{plant['WebId']}/elementattributes", params=params)
    assert response.status_code == status and fragment in response.json()["Errors"][0], response.text


def test_unknown_roots_are_404(http: httpx.Client, plant: dict[str, Any]) -> None:
    element = model().databases[0].elements[3]
    for url in (
        f"/assetdatabases/{element.web_id}/elementattributes",
        f"/elements/{plant['WebId']}/elementattributes",
    ):
        response = http.get(url)
        assert response.status_code == 404 and "was not found" in response.json()["Errors"][0], url
    assert (
        get(http, f"/assetdatabases/{plant['WebId']}/elementattributes", elementType="Measurement")["Items"]
        == []
    )


# attributes/search: AFSearch attribute queries


def hierarchy_order(
    children: list[Element], element: Callable[[Element], bool], attribute: Callable[[Attribute], bool]
) -> list[str]:
    return [
        a.path for el in under(children, True) if element(el) for a in every_attribute(el) if attribute(a)
    ]


@pytest.mark.parametrize(
    ("query", "element", "attribute"),
    [
        (
            "Element:{Template:=Pump} Name:=Flow",
            lambda e: e.template.is_a("Pump"),
            lambda a: a.name == "Flow",
        ),
        (
            "Element:{Name:='P-1*' Category:'Rotating Equipment'} Type:Double Category:<>Limits",
            lambda e: like("p-1*", e.name) and "Rotating Equipment" in e.categories,
            lambda a: a.type == "Double" and "Limits" not in a.spec.categories,
        ),
        (
            'Element:{Description:"Drive motor of*"} "Rated*"',
            lambda e: like("drive motor of*", e.description),
            lambda a: like("rated*", a.name),
        ),
        (
            "Element:{} Description:'CMMS key*'",
            lambda e: True,
            lambda a: like("cmms key*", a.spec.description),
        ),
        (
            "Element:{ Template:=Unit } Name:<>*e*",
            lambda e: e.template.name == "Unit",
            lambda a: not like("*e*", a.name),
        ),
    ],
)
def test_attribute_search_queries(
    http: httpx.Client,
    plant: dict[str, Any],
    query: str,
    element: Callable[[Element], bool],
    attribute: Callable[[Attribute], bool],
) -> None:
    expected = hierarchy_order(model().databases[0].roots, element, attribute)
    found = all_pages(http, "/attributes/search", databaseWebId=plant["WebId"], query=query, maxCount=100)
    assert expected and paths(found) == expected


def test_attribute_search_agrees_with_find_element_attributes(
    http: httpx.Client, plant: dict[str, Any]
) -> None:
    searched = all_pages(
        http,
        "/attributes/search",
        databaseWebId=plant["WebId"],
        query="Element:{Template:Equipment} Name:Flow",
    )
    found = all_pages(
        http,
        f"/assetdatabases/{plant['WebId']}/elementattributes",
        searchFullHierarchy="true",
        elementTemplate="Equipment",
        attributeNameFilter="Flow",
    )
    assert sorted(paths(searched)) == sorted(paths(found)) and found
    assert sorted(searched, key=lambda a: a["WebId"]) == sorted(found, key=lambda a: a["WebId"])


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"query": "Element:{}"}, 400, "databaseWebId"),
        ({"databaseWebId": "F1RDnope", "query": "Element:{}"}, 404, "F1RDnope"),
        ({"databaseWebId": "DB", "query": "Name:Flow"}, 400, "parent"),
        ({"databaseWebId": "DB", "query": "Element:{Name:a} Element:{Name:b}"}, 400, "parent once"),
        ({"databaseWebId": "DB", "query": "EventFrame:{Name:Batch*}"}, 400, "not implemented"),
        ({"databaseWebId": "DB", "query": "Element:Pump"}, 400, "braces"),
        ({"databaseWebId": "DB", "query": "Element:<>{Name:a}"}, 400, "braces"),
        (
            {"databaseWebId": "DB", "query": "Element:{Name:P*} DataReference:'PI Point'"},
            400,
            "DataReference",
        ),
        ({"databaseWebId": "DB", "query": "Element:{Owner:me}"}, 400, "Owner"),
    ],
)
def test_attribute_search_refuses_what_it_does_not_implement(
    http: httpx.Client, plant: dict[str, Any], params: dict[str, str], status: int, fragment: str
) -> None:
    sent = {k: plant["WebId"] if v == "DB" else v for k, v in params.items()}
    response = http.get("/attributes/search", params=sent)
    assert response.status_code == status and fragment in response.json()["Errors"][0], response.text
