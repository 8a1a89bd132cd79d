"""Contract tests of the emulator core over real HTTP: shapes, defaults, paging, limits, errors, batch, edits, clock.

Expected values come from an in-process Archive with the same seed: the server must serve exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from mock_pi.pitime import format_us, parse_time
from mock_pi.serialize import format_timestamps
from osipi_dagster_tests.emulator import Emulator

NOW = parse_time("2024-05-01T12:00:00Z", 0)
DAY = 86_400_000_000
CSRF = {"X-Requested-With": "XMLHttpRequest"}
LIMIT_TEXT = "is greater than the maximum allowed (150000)"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(seed=42, tags=500, data_servers=2)


@pytest.fixture(scope="module")
def archive() -> Archive:
    return Archive(42, lambda: NOW)


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=60) as client:
        yield client


def web_id(catalog: Catalog, index: int) -> str:
    return catalog.point_at(index).web_id


def test_home_and_system(http: httpx.Client, emulator: Emulator) -> None:
    assert http.get("/").json() == {
        "Links": {
            "Self": f"{emulator.api}/",
            "AssetServers": f"{emulator.api}/assetservers",
            "DataServers": f"{emulator.api}/dataservers",
            "System": f"{emulator.api}/system",
        }
    }
    system = http.get("/system").json()
    assert (
        system["ProductTitle"] == "PI Web API 2019 SP1"
        and system["Links"]["Status"] == f"{emulator.api}/system/status"
    )
    status = http.get("/system/status").json()
    assert status["State"] == "Running" and status["ServerTime"] == "2024-05-01T12:00:00Z"
    assert http.get("/system/versions").json()["OSIsoft.REST.Core"]["Build"] == "6298"
    assert http.get("/system/userinfo").json()["IdentityType"] == "Anonymous"
    r = httpx.get(f"{emulator.root}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_dataservers_and_enumeration_sets(http: httpx.Client, catalog: Catalog) -> None:
    body = http.get("/dataservers").json()
    assert [s["Name"] for s in body["Items"]] == ["PISRV01", "PISRV02"]
    first = body["Items"][0]
    assert set(first) == {
        "WebId",
        "Id",
        "Name",
        "Path",
        "IsConnected",
        "ServerVersion",
        "ServerTime",
        "Links",
    }
    assert first["Path"] == "\\\\PISRV01" and first["IsConnected"] is True
    assert (
        http.get("/dataservers", params={"path": "\\\\PISRV02"}).json()["WebId"] == body["Items"][1]["WebId"]
    )
    assert http.get(f"/dataservers/{first['WebId']}").json()["Name"] == "PISRV01"
    sets = http.get(first["Links"]["EnumerationSets"]).json()["Items"]
    modes = next(s for s in sets if s["Name"] == "Modes")
    assert http.get(f"/enumerationsets/{modes['WebId']}").json()["Path"] == "\\\\PISRV01\\Modes"
    values = http.get(modes["Links"]["Values"]).json()["Items"]
    assert [(v["Name"], v["Value"]) for v in values] == [("Manual", 0), ("Auto", 1), ("Cascade", 2)]
    assert http.get("/dataservers/F1DSnope").status_code == 404


def test_point_shapes_path_lookup_and_attributes(
    http: httpx.Client, catalog: Catalog, emulator: Emulator
) -> None:
    p = catalog.point_at(2)
    body = http.get("/points", params={"path": p.path}).json()
    assert body["WebId"] == p.web_id and body["Name"] == "Température #3/A %"
    assert (
        body["PointClass"] == "classic"
        and body["PointType"] == "Float32"
        and body["EngineeringUnits"] == "°C"
    )
    assert body["Links"]["RecordedData"] == f"{emulator.api}/streams/{p.web_id}/recorded"
    assert http.get(f"/points/{p.web_id}").json() == body
    assert http.get(f"/points/{p.web_id}", params={"selectedFields": "WebId;Name"}).json() == {
        "WebId": p.web_id,
        "Name": p.name,
    }
    attrs = http.get(f"/points/{p.web_id}/attributes", params=[("name", "pointtype"), ("name", "engunits")])
    assert [(a["Name"], a["Value"]) for a in attrs.json()["Items"]] == [
        ("pointtype", "Float32"),
        ("engunits", "°C"),
    ]
    bad = http.get(f"/points/{p.web_id}/attributes", params={"name": "nosuchattr"})
    assert bad.status_code == 400 and "nosuchattr" in bad.json()["Errors"][0]
    multi = http.get("/points/multiple", params=[("webId", p.web_id), ("path", "\\\\PISRV01\\missing")])
    assert multi.status_code == 207
    assert (
        multi.json()["Items"][0]["Object"]["Name"] == p.name
        and multi.json()["Items"][1]["Exception"]["Errors"]
    )


def test_points_search(http: httpx.Client, catalog: Catalog) -> None:
    servers = http.get("/dataservers").json()["Items"]
    found = []
    for s in servers:
        r = http.get("/points/search", params={"dataServerWebId": s["WebId"], "query": "Tag:=CDT*"})
        found += [i["Name"] for i in r.json()["Items"]]
    assert found == ["CDT158"]
    r = http.get(
        "/points/search", params={"dataServerWebId": servers[0]["WebId"], "query": "PointType:=Digital"}
    )
    expected = [
        catalog.point_at(i).name for i in range(0, 500, 2) if catalog.point_at(i).point_type == "Digital"
    ]
    assert [i["Name"] for i in r.json()["Items"]] == expected
    too_big = http.get("/points/search", params={"dataServerWebId": servers[0]["WebId"], "maxCount": 1001})
    assert too_big.status_code == 400


def test_paging_through_1200_points(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory("--seed", "42", "--tags", "2500", "--clock", "frozen:2024-05-01T12:00:00Z")
    with httpx.Client(timeout=60) as client:
        server = client.get(f"{emu.api}/dataservers").json()["Items"][0]
        url: str | None = f"{server['Links']['Points']}?maxCount=500"
        names: list[str] = []
        pages = 0
        while url:
            body = client.get(url).json()
            names += [p["Name"] for p in body["Items"]]
            url = body["Links"].get("Next")
            pages += 1
    expected = [Catalog(42, 2500).names[i] for i in range(0, 2500, 2)]
    assert pages == 3 and len(names) == 1250 and len(set(names)) == 1250 and names == expected
    # default page size is 1000, with First/Last links
    with httpx.Client(timeout=60) as client:
        body = client.get(server["Links"]["Points"]).json()
    assert len(body["Items"]) == 1000 and body["Links"]["Last"].endswith("startIndex=1000")


def test_name_filter(http: httpx.Client, catalog: Catalog) -> None:
    server = http.get("/dataservers").json()["Items"][0]
    body = http.get(server["Links"]["Points"], params={"nameFilter": "*TI0*"}).json()
    expected = [catalog.names[i] for i in range(0, 500, 2) if "TI0" in catalog.names[i].upper()]
    assert [p["Name"] for p in body["Items"]] == expected and expected


def test_recorded_defaults_match_the_archive(http: httpx.Client, catalog: Catalog, archive: Archive) -> None:
    p = catalog.point_at(10)
    body = http.get(f"/streams/{p.web_id}/recorded").json()
    expected = archive.recorded(p, NOW - DAY, NOW, limit=1000)
    assert set(body) == {"Links", "Items", "UnitsAbbreviation"} and body["UnitsAbbreviation"] == p.units
    assert [i["Timestamp"] for i in body["Items"]] == format_timestamps(expected.ts_us)
    got = np.array(
        [i["Value"] if not isinstance(i["Value"], dict) else np.nan for i in body["Items"]], dtype=float
    )
    assert np.array_equal(got, expected.value, equal_nan=True)
    first = body["Items"][0]
    assert list(first) == [
        "Timestamp",
        "Value",
        "UnitsAbbreviation",
        "Good",
        "Questionable",
        "Substituted",
        "Annotated",
    ]


def test_max_count_truncates_silently_and_descending_order(http: httpx.Client, catalog: Catalog) -> None:
    dense = catalog.point_at(5)
    asc = http.get(f"/streams/{dense.web_id}/recorded", params={"startTime": "*-1h", "maxCount": 2000}).json()
    assert len(asc["Items"]) == 2000 and "Next" not in asc["Links"]
    times = [parse_time(i["Timestamp"], 0) for i in asc["Items"]]
    assert times == sorted(times) and times[0] >= NOW - 3_600_000_000
    desc = http.get(
        f"/streams/{dense.web_id}/recorded", params={"startTime": "*", "endTime": "*-1h", "maxCount": 5}
    ).json()["Items"]
    dt = [parse_time(i["Timestamp"], 0) for i in desc]
    assert dt == sorted(dt, reverse=True) and NOW - 2_000_000 < dt[0] <= NOW


def test_duplicate_timestamps_are_adjacent_and_stable(
    http: httpx.Client, catalog: Catalog, archive: Archive
) -> None:
    for i in range(10, 200):
        p = catalog.point_at(i)
        vals = archive.recorded(p, NOW - 7 * DAY, NOW, limit=1000)
        dup = np.flatnonzero(np.diff(vals.ts_us) == 0)
        if len(dup):
            break
    else:
        pytest.fail("no point with duplicate timestamps")
    t = format_us(int(vals.ts_us[dup[0]]))
    params = {"startTime": t, "endTime": t}
    first = http.get(f"/streams/{p.web_id}/recorded", params=params).json()["Items"]
    second = http.get(f"/streams/{p.web_id}/recorded", params=params).json()["Items"]
    assert len(first) == 2 and first == second and first[0]["Timestamp"] == first[1]["Timestamp"] == t


def test_two_servers_with_the_same_seed_agree(emulator_factory: Callable[..., Emulator], emulator: Emulator,
                                              catalog: Catalog) -> None:  # fmt: skip
    other = emulator_factory("--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z")
    ids = [catalog.point_at(i).web_id for i in (0, 3, 8, 9, 11, 40)]
    params = [("webId", w) for w in ids] + [("startTime", "*-3d"), ("maxCount", "5000")]
    a = httpx.get(f"{emulator.api}/streamsets/recorded", params=params, timeout=60)
    b = httpx.get(f"{other.api}/streamsets/recorded", params=params, timeout=60)
    assert a.status_code == 200 and a.content.replace(emulator.api.encode(), b"") == b.content.replace(
        other.api.encode(), b""
    )


def test_max_returned_items_limit(http: httpx.Client, catalog: Catalog) -> None:
    dense = catalog.point_at(5).web_id
    r = http.get(f"/streams/{dense}/recorded", params={"startTime": "*-2d", "maxCount": 1_000_000})
    assert r.status_code == 400 and LIMIT_TEXT in r.json()["Errors"][0]
    two = [("webId", dense), ("webId", catalog.point_at(255).web_id)]
    r = http.get("/streamsets/recorded", params=[*two, ("maxCount", "100000")])
    assert r.status_code == 400 and LIMIT_TEXT in r.json()["Errors"][0]
    ok = http.get(
        "/streamsets/recorded",
        params=[*two, ("maxCount", "75000"), ("selectedFields", "Items.Items.Timestamp")],
    )
    assert ok.status_code == 200 and [len(s["Items"]) for s in ok.json()["Items"]] == [75000, 75000]
    small = http.get(f"/streams/{dense}/recorded", params={"startTime": "*-10s", "maxCount": 1_000_000})
    assert small.status_code == 200 and 10 < len(small.json()["Items"]) < 40


def test_errors(http: httpx.Client, catalog: Catalog) -> None:
    w = catalog.point_at(0).web_id
    r = http.get(f"/streams/{w}/recorded", params={"startTime": "*-1zz"})
    assert r.status_code == 400 and "'*-1zz'" in r.json()["Errors"][0]
    for path in ("/streams/F1DPbogus/recorded", "/points/F1DPbogus", "/streams/F1DPbogus/value"):
        r = http.get(path)
        assert r.status_code == 404 and "F1DPbogus" in r.json()["Errors"][0]
    r = http.get("/streamsets/recorded", params=[("webId", w), ("webId", "nope")])
    assert r.status_code == 404
    r = http.get("/no/such/controller")
    assert r.status_code == 404 and r.json()["Errors"]
    assert http.get(f"/streams/{w}/recorded", params={"boundaryType": "Sideways"}).status_code == 400


def test_csrf(http: httpx.Client, catalog: Catalog) -> None:
    w = catalog.point_at(0).web_id
    for path, body in ((f"/streams/{w}/value", {"Value": 1.0}), ("/batch", {})):
        r = http.post(path, json=body)
        assert r.status_code == 403 and "X-Requested-With" in r.json()["Errors"][0]


def test_selected_fields_and_other_endpoints(http: httpx.Client, catalog: Catalog, archive: Archive) -> None:
    p = catalog.point_at(0)
    body = http.get(
        f"/streams/{p.web_id}/recorded",
        params={"maxCount": 2, "selectedFields": "Items.Timestamp;Items.Value"},
    ).json()
    assert list(body) == ["Items"] and all(list(i) == ["Timestamp", "Value"] for i in body["Items"])
    interp = http.get(f"/streams/{p.web_id}/interpolated", params={"startTime": "t", "endTime": "*"}).json()
    assert [i["Timestamp"][11:13] for i in interp["Items"]] == [f"{h:02d}" for h in range(13)]
    plot = http.get(f"/streams/{p.web_id}/plot").json()["Items"]
    assert plot[0]["Timestamp"] == "2024-04-30T12:00:00Z" and plot[-1]["Timestamp"] == "2024-05-01T12:00:00Z"
    assert len(plot) <= 24 * 5 + 2
    end = http.get(f"/streams/{p.web_id}/end").json()
    snap = archive.snapshot(p)
    assert end["Timestamp"] == format_us(int(snap.ts_us[0])) and end["Value"] == snap.value[0]
    at = http.get(f"/streams/{p.web_id}/recordedattime", params={"time": end["Timestamp"]}).json()
    assert at == end
    assert http.get(f"/streams/{p.web_id}/value").json() == end


def test_summary(http: httpx.Client, catalog: Catalog, archive: Archive) -> None:
    p = catalog.point_at(0)
    params = [("summaryType", "Count"), ("summaryType", "Maximum"), ("calculationBasis", "EventWeighted")]
    items = http.get(f"/streams/{p.web_id}/summary", params=params).json()["Items"]
    vals = archive.recorded(p, NOW - DAY, NOW)  # one EventWeighted interval holds the events at both ends
    good = vals.value[vals.good]
    assert items[0]["Type"] == "Count" and items[0]["Value"]["Value"] == len(good)
    assert items[1]["Type"] == "Maximum" and items[1]["Value"]["Value"] == good.max()
    assert http.get(f"/streams/{p.web_id}/summary").json()["Items"][0]["Type"] == "Total"
    hourly = http.get(
        f"/streams/{p.web_id}/summary", params={"summaryType": "Average", "summaryDuration": "1h"}
    )
    assert len(hourly.json()["Items"]) == 24
    digital = next(catalog.point_at(i) for i in range(500) if catalog.point_at(i).point_type == "Digital")
    ok = http.get(
        f"/streams/{digital.web_id}/summary",
        params={"summaryType": "Count", "calculationBasis": "EventWeighted"},
    )
    assert ok.status_code == 200 and ok.json()["Items"][0]["Value"]["Value"] > 0
    assert (
        http.get(f"/streams/{digital.web_id}/summary", params={"summaryType": "Average"}).status_code == 400
    )


def test_streamset_value_end_and_digital_shape(
    http: httpx.Client, catalog: Catalog, emulator: Emulator
) -> None:
    digital = next(catalog.point_at(i) for i in range(20, 500) if catalog.point_at(i).point_type == "Digital")
    body = http.get(
        "/streamsets/end", params=[("webId", digital.web_id), ("webId", catalog.point_at(0).web_id)]
    ).json()
    first = body["Items"][0]
    assert (
        first["WebId"] == digital.web_id and first["Name"] == digital.name and first["Path"] == digital.path
    )
    assert first["Links"] == {"Source": f"{emulator.api}/points/{digital.web_id}"}
    value = first["Value"]["Value"]
    assert set(value) == {"Name", "Value", "IsSystem"}
    assert value["IsSystem"] or value["Name"] == digital.digital_set.names_by_code[value["Value"]]


def _batch(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/batch", json=body, headers=CSRF)
    assert r.status_code == 207
    return r.json()


def test_batch(http: httpx.Client, emulator: Emulator, catalog: Catalog) -> None:
    api = "https://elsewhere:9999/piwebapi"  # host and port of sub-requests are ignored
    out = _batch(
        http,
        {
            "servers": {"Method": "GET", "Resource": f"{api}/dataservers"},
            "points": {
                "Method": "GET",
                "RequestTemplate": {
                    "Resource": f"{api}/dataservers/{{0}}/points?maxCount=3&selectedFields=Items.WebId"
                },
                "Parameters": ["$.servers.Content.Items[*].WebId"],
                "ParentIds": ["servers"],
            },
            "first": {
                "Method": "GET",
                "Resource": f"{api}/streams/{{0}}/recorded?maxCount=2",
                "Parameters": ["$.points.Content.Items[0].Content.Items[0].WebId"],
                "ParentIds": ["points"],
            },
            "bad": {"Method": "GET", "Resource": f"{api}/points/F1DPbogus"},
            "child_of_bad": {
                "Method": "GET",
                "Resource": f"{api}/points/{{0}}",
                "Parameters": ["$.bad.Content.WebId"],
                "ParentIds": ["bad"],
            },
        },
    )
    assert out["servers"]["Status"] == 200 and len(out["servers"]["Content"]["Items"]) == 2
    fan = out["points"]["Content"]
    assert out["points"]["Status"] == 200 and fan["Total"] == 2 and len(fan["Items"]) == 2
    assert [i["Status"] for i in fan["Items"]] == [200, 200]
    assert [p["WebId"] for p in fan["Items"][0]["Content"]["Items"]] == [
        web_id(catalog, i) for i in (0, 2, 4)
    ]
    assert out["first"]["Status"] == 200 and len(out["first"]["Content"]["Items"]) == 2
    assert emulator.api in out["servers"]["Content"]["Items"][0]["Links"]["Self"]
    assert out["bad"]["Status"] == 404 and out["bad"]["Content"]["Errors"]
    assert out["child_of_bad"]["Status"] >= 400


def test_batch_write_and_read_back(emulator_factory: Callable[..., Emulator], catalog: Catalog) -> None:
    emu = emulator_factory("--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z")
    w = catalog.point_at(10).web_id
    with httpx.Client(base_url=emu.api, timeout=60) as client:
        out = _batch(
            client,
            {
                "write": {
                    "Method": "POST",
                    "Resource": f"{emu.api}/streams/{w}/value?updateOption=Insert",
                    "Content": '{"Timestamp":"2024-05-01T06:00:00.25Z","Value":42.5}',
                },
                "read": {
                    "Method": "GET",
                    "Resource": f"{emu.api}/streams/{w}/recorded?startTime=2024-05-01T06:00:00.25Z&endTime=2024-05-01T06:00:00.25Z",
                    "ParentIds": ["write"],
                },
            },
        )
    assert out["write"]["Status"] == 202 and out["write"]["Content"] == ""
    assert [(i["Timestamp"], i["Value"]) for i in out["read"]["Content"]["Items"]] == [
        ("2024-05-01T06:00:00.25Z", 42.5)
    ]


def test_late_inserts_replace_delete(emulator_factory: Callable[..., Emulator], catalog: Catalog,
                                     archive: Archive) -> None:  # fmt: skip
    emu = emulator_factory(
        "--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin"
    )
    p = catalog.point_at(10)
    base = archive.recorded(p, NOW - DAY, NOW)
    t_replace, t_delete = format_us(int(base.ts_us[3])), format_us(int(base.ts_us[4]))
    with httpx.Client(timeout=60) as client:
        admin = f"{emu.root}/admin/streams/{p.web_id}"
        late = [
            {"Timestamp": "2024-04-30T13:00:00.5Z", "Value": 1.25},
            {"Timestamp": "2024-04-30T13:00:01Z", "Value": 2.5},
        ]
        assert client.post(f"{admin}/insert", json=late).json() == {"Inserted": 2}
        assert client.post(f"{admin}/replace", json=[{"Timestamp": t_replace, "Value": -3.0}]).json() == {
            "Replaced": 1
        }
        assert client.post(f"{admin}/delete", json=[t_delete]).json() == {"Deleted": 1}
        r = client.post(
            f"{emu.api}/streams/{p.web_id}/recorded",
            json=[{"Timestamp": "2024-04-30T14:00:00Z", "Value": 9.0, "Questionable": True}],
            headers=CSRF,
        )
        assert r.status_code == 202
        items = client.get(
            f"{emu.api}/streams/{p.web_id}/recorded", params={"startTime": "*-1d", "maxCount": 10000}
        ).json()["Items"]
    by_time: dict[str, list[Any]] = {}
    for item in items:
        by_time.setdefault(item["Timestamp"], []).append(item["Value"])
    assert by_time["2024-04-30T13:00:00.5Z"] == [1.25] and by_time["2024-04-30T13:00:01Z"] == [2.5]
    assert by_time[t_replace] == [-3.0] and t_delete not in by_time
    assert by_time["2024-04-30T14:00:00Z"][-1] == 9.0
    assert len(items) == len(base) + 2 - 1 + (
        0 if "2024-04-30T14:00:00Z" in format_timestamps(base.ts_us) else 1
    )


def test_clock_frozen_then_advanced(emulator_factory: Callable[..., Emulator], catalog: Catalog) -> None:
    emu = emulator_factory(
        "--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin"
    )
    dense = catalog.point_at(5).web_id
    with httpx.Client(timeout=60) as client:
        first = client.get(f"{emu.api}/streams/{dense}/end").json()
        assert client.get(f"{emu.api}/streams/{dense}/end").json() == first  # frozen: nothing moves
        clock = client.post(f"{emu.root}/admin/clock", json={"Advance": "1h"}).json()
        assert clock == {"Mode": "frozen", "Now": "2024-05-01T13:00:00Z", "Rate": 1.0}
        later = client.get(f"{emu.api}/streams/{dense}/end").json()
        assert NOW + 3_598_000_000 < parse_time(later["Timestamp"], 0) <= NOW + 3_600_000_000
        status = client.get(f"{emu.api}/system/status").json()
        assert status["ServerTime"] == "2024-05-01T13:00:00Z"
        assert (
            client.post(
                f"{emu.root}/admin/clock", json={"Offset": "2024-05-02T00:00:00Z", "Rate": 3600}
            ).status_code
            == 200
        )
        moved = client.get(f"{emu.root}/admin/clock").json()
        assert moved["Mode"] == "offset" and moved["Now"] >= "2024-05-02T00:00:00Z"
