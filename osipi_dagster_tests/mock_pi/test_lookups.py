"""By-name and by-path lookups over real HTTP, as clients use them: GetByName for data and asset servers, GetByPath
for every object type the emulator models, GetMultiple, and the enumeration values behind a set's links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_pi.catalog import Catalog
from osipi_dagster_tests.emulator import Emulator


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(seed=42, tags=500, data_servers=2)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def not_found(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 404, response.text
    body = response.json()
    assert list(body) == ["Errors"] and all(f in body["Errors"][0] for f in fragments), body


def test_data_server_get_by_name(http: httpx.Client) -> None:
    listed = ok(http.get("/dataservers"))["Items"]
    for server in listed:
        assert ok(http.get("/dataservers", params={"name": server["Name"]})) == server
    assert ok(http.get("/dataservers", params={"name": "pisrv02"}))["WebId"] == listed[1]["WebId"]
    assert ok(http.get("/dataservers", params={"Name": "PISRV02", "selectedFields": "Name;Path"})) == {
        "Name": "PISRV02",
        "Path": "\\\\PISRV02",
    }
    not_found(http.get("/dataservers", params={"name": "PISRV99"}), "PISRV99")
    both = http.get("/dataservers", params={"name": "PISRV01", "path": "\\\\PISRV02"})
    assert both.status_code == 400 and "not both" in both.json()["Errors"][0]


def test_data_server_get_by_path_in_both_forms(http: httpx.Client) -> None:
    second = ok(http.get("/dataservers"))["Items"][1]
    for path in ("\\\\PISRV02", "\\\\pisrv02", "\\\\PIServer[PISRV02]"):
        assert ok(http.get("/dataservers", params={"path": path}))["WebId"] == second["WebId"], path
    not_found(http.get("/dataservers", params={"path": "\\\\PISRV99"}), "PISRV99")


@pytest.mark.parametrize(("kind", "prefix"), [("IDOnly", "I1DS"), ("PathOnly", "P1DS"), ("Full", "F1DS")])
def test_data_server_web_id_types_resolve(http: httpx.Client, kind: str, prefix: str) -> None:
    server = ok(http.get("/dataservers", params={"name": "PISRV02", "webIdType": kind}))
    assert server["WebId"].startswith(prefix) and server["Links"]["Self"].endswith(server["WebId"])
    assert ok(http.get(f"/dataservers/{server['WebId']}"))["Name"] == "PISRV02"
    points = ok(http.get(server["Links"]["Points"], params={"nameFilter": "CDT158"}))["Items"]
    assert [p["Name"] for p in points] == ["CDT158"]


def test_asset_server_get_by_name_and_path(http: httpx.Client) -> None:
    server = ok(http.get("/assetservers"))["Items"][0]
    assert ok(http.get("/assetservers", params={"name": "PIAF01"})) == server
    assert ok(http.get("/assetservers", params={"name": "piaf01"}))["WebId"] == server["WebId"]
    assert ok(http.get("/assetservers", params={"path": "\\\\PIAF01"}))["WebId"] == server["WebId"]
    not_found(http.get("/assetservers", params={"name": "OTHERAF"}), "OTHERAF")
    both = http.get("/assetservers", params={"name": "PIAF01", "path": "\\\\PIAF01"})
    assert both.status_code == 400


def test_af_objects_by_path_round_trip(http: httpx.Client) -> None:
    server = ok(http.get("/assetservers"))["Items"][0]
    db = ok(http.get(server["Links"]["Databases"]))["Items"][0]
    assert ok(http.get("/assetdatabases", params={"path": db["Path"]}))["WebId"] == db["WebId"]
    template = ok(http.get(db["Links"]["ElementTemplates"]))["Items"][0]
    assert template["Path"].endswith(f"\\ElementTemplates[{template['Name']}]")
    assert ok(http.get("/elementtemplates", params={"path": template["Path"]}))["WebId"] == template["WebId"]
    assert (
        ok(http.get("/elementtemplates", params={"path": template["Path"].upper()}))["WebId"]
        == template["WebId"]
    )
    element = ok(http.get(db["Links"]["Elements"]))["Items"][0]
    assert ok(http.get("/elements", params={"path": element["Path"]}))["WebId"] == element["WebId"]
    attribute = ok(http.get(element["Links"]["Attributes"]))["Items"][0]
    assert ok(http.get("/attributes", params={"path": attribute["Path"]}))["WebId"] == attribute["WebId"]
    frame = ok(http.get(db["Links"]["EventFrames"]))["Items"][0]
    assert ok(http.get("/eventframes", params={"path": frame["Path"]}))["WebId"] == frame["WebId"]
    not_found(http.get("/elementtemplates", params={"path": db["Path"] + "\\ElementTemplates[Nope]"}), "Nope")
    assert http.get("/elementtemplates").status_code == 400  # path is required


def test_enumeration_sets_and_values_by_path_and_self_link(http: httpx.Client) -> None:
    server = ok(http.get("/dataservers", params={"name": "PISRV01"}))
    sets = ok(http.get(server["Links"]["EnumerationSets"]))["Items"]
    modes = next(s for s in sets if s["Name"] == "Modes")
    assert ok(http.get("/enumerationsets", params={"path": "\\\\PISRV01\\Modes"}))["WebId"] == modes["WebId"]
    values = ok(http.get(modes["Links"]["Values"]))["Items"]
    for value in values:
        assert ok(http.get(value["Links"]["Self"])) == value
        assert ok(http.get("/enumerationvalues", params={"path": value["Path"].lower()})) == value
    assert [(v["Name"], v["Value"], v["Path"]) for v in values][1] == ("Auto", 1, "\\\\PISRV01\\Modes\\Auto")
    not_found(http.get("/enumerationvalues", params={"path": "\\\\PISRV01\\Modes\\Turbo"}), "Turbo")
    not_found(http.get("/enumerationvalues/F1MVnope"), "F1MVnope")
    assert http.get("/enumerationvalues").status_code == 400


def test_points_get_multiple_with_include_mode(http: httpx.Client, catalog: Catalog) -> None:
    a, b = catalog.point_at(0), catalog.point_at(1)
    params = [("webId", a.web_id), ("path", b.path), ("path", "\\\\PISRV01\\missing")]
    body = http.get("/points/multiple", params=params)
    assert body.status_code == 207
    items = body.json()["Items"]
    assert [(i["IdentifierType"], i["Object"] and i["Object"]["Name"]) for i in items] == [
        ("WebId", "SINUSOID"),
        ("Path", "CDT158"),
        ("Path", None),
    ]
    assert items[2]["Exception"]["Errors"] and items[0]["Exception"] is None
    good = http.get("/points/multiple", params=[*params, ("includeMode", "ItemsWithoutException")])
    assert good.status_code == 200 and [i["Object"]["Name"] for i in good.json()["Items"]] == [
        "SINUSOID",
        "CDT158",
    ]
    bad = http.get("/points/multiple", params=[*params, ("includeMode", "itemswithexception")])
    assert bad.status_code == 207 and [i["Identifier"] for i in bad.json()["Items"]] == [
        "\\\\PISRV01\\missing"
    ]
    fields = http.get("/points/multiple", params=[params[0], ("selectedFields", "Items.Object.Name")])
    assert fields.status_code == 200 and fields.json() == {"Items": [{"Object": {"Name": "SINUSOID"}}]}
    assert http.get("/points/multiple", params=[*params, ("includeMode", "Some")]).status_code == 400
    assert http.get("/points/multiple").status_code == 400


def test_af_get_multiple(http: httpx.Client) -> None:
    server = ok(http.get("/assetservers"))["Items"][0]
    db = ok(http.get(server["Links"]["Databases"]))["Items"][0]
    elements = ok(http.get(db["Links"]["Elements"], params={"searchFullHierarchy": "true", "maxCount": 3}))[
        "Items"
    ]
    got = ok(
        http.get(
            "/elements/multiple", params=[("webId", elements[0]["WebId"]), ("path", elements[2]["Path"])]
        )
    )
    assert [i["Object"] for i in got["Items"]] == [elements[0], elements[2]]
    attrs = ok(http.get(elements[2]["Links"]["Attributes"]))["Items"][:2]
    mixed = http.get(
        "/attributes/multiple", params=[("path", attrs[0]["Path"]), ("path", attrs[1]["Path"] + "x")]
    )
    assert mixed.status_code == 207
    assert [i["Object"] and i["Object"]["WebId"] for i in mixed.json()["Items"]] == [attrs[0]["WebId"], None]
    # An element's path is not an attribute: the item fails rather than answering with the wrong kind of object.
    wrong = http.get("/attributes/multiple", params={"path": elements[0]["Path"]})
    assert wrong.status_code == 207 and wrong.json()["Items"][0]["Object"] is None
    frames = ok(http.get(db["Links"]["EventFrames"]))["Items"][:2]
    ef = ok(
        http.get("/eventframes/multiple", params=[("webId", frames[0]["WebId"]), ("path", frames[1]["Path"])])
    )
    assert [i["Object"]["WebId"] for i in ef["Items"]] == [frames[0]["WebId"], frames[1]["WebId"]]


def test_lookups_inside_a_batch(http: httpx.Client) -> None:
    batch = {
        "server": {"Method": "GET", "Resource": "dataservers?name=PISRV02"},
        "point": {
            "Method": "GET",
            "Resource": "points/search?dataServerWebId={0}&query=name:CDT158",
            "Parameters": ["$.server.Content.WebId"],
            "ParentIds": ["server"],
        },
    }
    body = http.post("/batch", json=batch, headers={"X-Requested-With": "XMLHttpRequest"})
    assert body.status_code == 207
    result = body.json()
    assert result["server"]["Status"] == 200 and result["point"]["Status"] == 200
    assert [i["Name"] for i in result["point"]["Content"]["Items"]] == ["CDT158"]
