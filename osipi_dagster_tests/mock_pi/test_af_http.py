"""mock_pi AF over HTTP: asset servers, databases, the element hierarchy (paging, full-hierarchy search, AFSearch),
attributes (filters, values, PI Point data references resolving to real catalog points) and stream sets by parent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_pi.af import Element
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


def test_asset_server_and_databases_by_web_id_and_path(http: httpx.Client) -> None:
    body = get(http, "/assetservers")
    assert body["Links"] == {} and len(body["Items"]) == 1
    server = body["Items"][0]
    assert (server["Name"], server["Path"], server["IsConnected"]) == ("PIAF01", "\\\\PIAF01", True)
    assert server["ServerTime"] == "2024-05-01T12:00:00Z"
    assert server["WebId"] == model().server.web_id  # deterministic from the seed
    assert get(http, "/assetservers", path="\\\\piaf01")["WebId"] == server["WebId"]
    dbs = get(http, server["Links"]["Databases"])["Items"]
    assert [d["Name"] for d in dbs] == ["Plant Operations", "Mining Site"]
    assert dbs[0]["Links"]["Self"].startswith("http://127.0.0.1:")
    by_path = get(http, "/assetdatabases", path="\\\\PIAF01\\Mining Site")
    assert by_path["WebId"] == dbs[1]["WebId"] == get(http, f"/assetdatabases/{dbs[1]['WebId']}")["WebId"]


def test_walking_the_hierarchy_finds_every_element(http: httpx.Client) -> None:
    db = model().databases[1]
    top = get(http, "/assetdatabases", path=db.path)
    queue = [top["Links"]["Elements"]]
    seen: dict[str, dict[str, Any]] = {}
    max_depth = 0
    while queue:
        for el in get(http, queue.pop())["Items"]:
            seen[el["Path"]] = el
            max_depth = max(max_depth, el["Path"].count("\\") - db.path.count("\\"))
            assert el["HasChildren"] == (len(model().element_by_path(el["Path"]).children) > 0)
            if el["HasChildren"]:
                queue.append(el["Links"]["Elements"])
    assert len(seen) == len(db.elements)
    assert max_depth >= 5
    pump = next(e for e in seen.values() if e["TemplateName"] == "Pump")
    assert pump["CategoryNames"] == ["Rotating Equipment"]
    assert {"Self", "Attributes", "Elements", "Parent", "Template", "EventFrames", "RecordedData"} <= set(
        pump["Links"]
    )
    template = get(http, pump["Links"]["Template"])
    assert (template["Name"], template["BaseTemplate"], template["InstanceType"]) == (
        "Pump",
        "Equipment",
        "Element",
    )


def test_search_full_hierarchy_with_derived_template_filter(
    http: httpx.Client, plant: dict[str, Any]
) -> None:
    db = model().databases[0]
    direct = get(http, plant["Links"]["Elements"], templateName="Equipment")["Items"]
    assert direct == []  # only the enterprise root is a direct child
    body = get(
        http, plant["Links"]["Elements"], templateName="equipment", searchFullHierarchy="true", maxCount=5000
    )
    names = [e["Name"] for e in body["Items"]]
    assert sorted(names, key=str.lower) == names
    assert sorted(names) == sorted(e.name for e in db.equipment)
    assert {e["TemplateName"] for e in body["Items"]} == {"Pump", "Compressor", "Tank", "Meter"}
    pumps = get(
        http, plant["Links"]["Elements"], searchFullHierarchy="true", nameFilter="p-1*", templateName="Pump"
    )
    expected = [e.name for e in db.elements if e.template.name == "Pump" and e.name.startswith("P-1")]
    assert sorted(e["Name"] for e in pumps["Items"]) == sorted(expected) and expected
    motors = get(http, plant["Links"]["Elements"], searchFullHierarchy="true", categoryName="Rotating Equipment",
                 sortOrder="Descending", maxCount=3)  # fmt: skip
    rotating = sorted((e.name for e in db.elements if "Rotating Equipment" in e.categories), key=str.lower)
    assert [e["Name"] for e in motors["Items"]] == rotating[::-1][:3]
    assert "Next" in motors["Links"] and "Previous" not in motors["Links"]


def test_paging_through_more_than_1200_children(emulator_factory: Any) -> None:
    emu = emulator_factory("--seed", "5", "--tags", "200", "--elements-per-db", "6500", "--af-databases", "1")
    with httpx.Client(base_url=emu.api, timeout=30.0) as http:
        db = get(http, "/assetdatabases", path="\\\\PIAF01\\Plant Operations")
        metering = get(
            http, "/elements", path="\\\\PIAF01\\Plant Operations\\Contoso Chemicals\\Custody Metering"
        )
        first = get(http, metering["Links"]["Elements"])
        assert len(first["Items"]) == 1000 and {"First", "Next", "Last"} <= set(first["Links"])
        names: list[str] = []
        url: str | None = metering["Links"]["Elements"] + "?maxCount=500"
        pages = 0
        while url:
            body = get(http, url)
            names.extend(e["Name"] for e in body["Items"])
            url = body["Links"].get("Next")
            pages += 1
        assert pages == 3
        assert names == [f"FQ-{i:04d}" for i in range(1, 1301)]
        assert get(http, db["Links"]["Elements"])["Items"][0]["Name"] == "Contoso Chemicals"


def test_element_search_query(http: httpx.Client, plant: dict[str, Any]) -> None:
    db = model().databases[0]
    body = get(http, "/elements/search", databaseWebId=plant["WebId"], query="Name:=P-2* Template:=Equipment")
    expected = sorted(
        e.name for e in db.elements if e.name.startswith("P-2") and e.template.is_a("Equipment")
    )
    assert [e["Name"] for e in body["Items"]] == expected and expected
    quoted = get(http, "/elements/search", databaseWebId=plant["WebId"], query="Name:='Custody Metering'")
    assert [e["Name"] for e in quoted["Items"]] == ["Custody Metering"]
    slim = get(http, "/elements/search", databaseWebId=plant["WebId"], query="Template:=Site",
               selectedFields="Items.Name;Items.TemplateName")  # fmt: skip
    assert slim == {
        "Items": [{"Name": n, "TemplateName": "Site"} for n in ("Houston", "Rotterdam", "Singapore")]
    }
    bad = http.get("/elements/search", params={"databaseWebId": plant["WebId"], "query": "Color:=Red"})
    assert bad.status_code == 400 and "Color" in bad.json()["Errors"][0]


def _pump(kind: str = "Pump") -> Element:
    return next(e for e in model().databases[0].elements if e.template.name == kind)


def test_attribute_lists_and_filters(http: httpx.Client) -> None:
    pump = get(http, f"/elements/{_pump().web_id}")
    default = [a["Name"] for a in get(http, pump["Links"]["Attributes"])["Items"]]
    assert default == sorted(default) and "Asset Tag" not in default and "High Limit" not in default
    assert {"Flow", "Discharge Pressure", "Manufacturer", "Criticality"} <= set(default)
    hidden = [a["Name"] for a in get(http, pump["Links"]["Attributes"], showHidden="true")["Items"]]
    assert set(hidden) - set(default) == {"Asset Tag"}
    full = [a["Name"] for a in get(http, pump["Links"]["Attributes"], searchFullHierarchy="true")["Items"]]
    assert set(full) - set(default) == {"High Limit", "Low Limit"}
    nameplate = get(http, pump["Links"]["Attributes"], categoryName="Nameplate")["Items"]
    assert {a["Name"] for a in nameplate} == {
        "Manufacturer",
        "Model",
        "Install Date",
        "Rated Power",
        "Efficiency",
    }
    base_only = get(http, pump["Links"]["Attributes"], templateName="Equipment", showHidden="true")["Items"]
    assert {a["Name"] for a in base_only} == {s.name for s in _pump().template.base.specs}  # type: ignore[union-attr]
    dp = next(a for a in get(http, pump["Links"]["Attributes"])["Items"] if a["Name"] == "Discharge Pressure")
    assert dp["HasChildren"] is True
    limits = get(http, dp["Links"]["Attributes"])["Items"]
    assert [(a["Name"], a["TraitName"], a["DefaultUnitsNameAbbreviation"]) for a in limits] == [
        ("High Limit", "LimitHi", "bar"), ("Low Limit", "LimitLo", "bar")]  # fmt: skip
    compressor = get(http, f"/elements/{_pump('Compressor').web_id}")
    names = {a["Name"] for a in get(http, compressor["Links"]["Attributes"])["Items"]}
    shown = {a["Name"]: a for a in get(http, compressor["Links"]["Attributes"], showExcluded="true")["Items"]}
    assert "Legacy Vibration" not in names and shown["Legacy Vibration"]["IsExcluded"] is True


def test_static_attribute_values(http: httpx.Client) -> None:
    el = _pump()
    attrs = {a.name: a for a in model().attributes(el)}
    rated = get(http, f"/attributes/{attrs['Rated Power'].web_id}/value")
    assert rated == {"Timestamp": "1970-01-01T00:00:00Z", "Value": attrs["Rated Power"].value, "UnitsAbbreviation": "kW",
                     "Good": True, "Questionable": False, "Substituted": False, "Annotated": False}  # fmt: skip
    crit = get(http, f"/attributes/{attrs['Criticality'].web_id}/value")["Value"]
    name, code = attrs["Criticality"].value
    assert crit == {"Name": name, "Value": code, "IsSystem": False}
    installed = get(http, f"/attributes/{attrs['Install Date'].web_id}/value")["Value"]
    assert installed.endswith("T00:00:00Z") and "2005" <= installed[:4] <= "2020"
    assert isinstance(get(http, f"/attributes/{attrs['In Service'].web_id}/value")["Value"], bool)
    meta = get(http, "/attributes", path=attrs["Criticality"].path)
    assert (meta["Type"], meta["TypeQualifier"], meta["DataReferencePlugIn"]) == (
        "EnumerationValue",
        "Criticality",
        "",
    )


def test_pi_point_attribute_resolves_to_catalog_point_and_streams(http: httpx.Client) -> None:
    flow = next(a for a in model().attributes(_pump()) if a.name == "Flow")
    attr = get(http, f"/attributes/{flow.web_id}")
    assert attr["DataReferencePlugIn"] == "PI Point"
    tag_path, _, uom = attr["ConfigString"].partition(";UOM=")
    point = get(http, "/points", path=tag_path)
    assert point["WebId"] == flow.point.web_id and uom == point["EngineeringUnits"] == "m3/h"  # type: ignore[union-attr]
    assert get(http, attr["Links"]["Point"])["WebId"] == point["WebId"]
    window = {"startTime": "2024-05-01T06:00:00Z", "endTime": "2024-05-01T12:00:00Z"}
    via_attr = get(http, f"/streams/{flow.web_id}/recorded", **window)
    via_point = get(http, f"/streams/{point['WebId']}/recorded", **window)
    assert len(via_attr["Items"]) > 10
    assert via_attr["Items"] == via_point["Items"]
    assert get(http, attr["Links"]["Value"]) == get(http, f"/streams/{point['WebId']}/value")


def test_stream_set_by_element_parent(http: httpx.Client) -> None:
    el = _pump("Compressor")
    parent = get(http, f"/elements/{el.web_id}")
    pi_attrs = [a for a in model().attributes(el) if a.point is not None and not a.spec.excluded]
    window = {"startTime": "2024-05-01T11:00:00Z", "endTime": "2024-05-01T12:00:00Z"}
    body = get(http, parent["Links"]["RecordedData"], **window)
    assert [i["Name"] for i in body["Items"]] == [a.name for a in pi_attrs]
    adhoc = get(http, "/streamsets/recorded", webId=[a.web_id for a in pi_attrs], **window)
    assert body == adhoc
    with_excluded = get(http, parent["Links"]["Value"], showExcluded="true")
    assert [i["Name"] for i in with_excluded["Items"]][-1] == "Legacy Vibration"
    only = get(http, parent["Links"]["EndValue"], nameFilter="*Temp*")
    assert [i["Name"] for i in only["Items"]] == ["Temperature"]
    assert get(http, parent["Links"]["Value"], nameFilter="nothing*") == {"Links": {}, "Items": []}


def test_errors(http: httpx.Client, plant: dict[str, Any]) -> None:
    for url in ("/elements/F1EmNOPE", "/attributes/F1AbENOPE/value", "/assetdatabases/F1RDNOPE/elements",
                "/streamsets/F1EmNOPE/recorded"):  # fmt: skip
        r = http.get(url)
        assert r.status_code == 404, url
        assert "NOPE" in r.json()["Errors"][0]
    r = http.get("/elements", params={"path": "\\\\PIAF01\\Plant Operations\\No Such Element"})
    assert r.status_code == 404 and "No Such Element" in r.json()["Errors"][0]
    assert http.get("/elements").status_code == 400
    assert http.get("/elements/search").status_code == 400
    assert http.get(plant["Links"]["Elements"], params={"sortOrder": "Sideways"}).status_code == 400
    assert http.get(plant["Links"]["Elements"], params={"maxCount": "many"}).status_code == 400
