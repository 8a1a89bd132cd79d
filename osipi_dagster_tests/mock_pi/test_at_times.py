"""GetInterpolatedAtTimes and GetRecordedAtTimes over real HTTP: streams/{webId}/interpolatedattimes and
/recordedattimes, checked against the emulator's own interpolated and recordedattime reads of the same stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.mock_pi.af_expected import get

TIMES = [f"2024-05-01T10:{m:02d}:00Z" for m in range(0, 60, 7)]
MODES = ["Auto", "AtOrBefore", "Before", "AtOrAfter", "After", "Exact"]


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def sinusoid(http: httpx.Client) -> str:
    return get(http, "/points", path="\\\\PISRV01\\SINUSOID")["WebId"]


@pytest.fixture(scope="module")
def pump_flow(http: httpx.Client) -> dict[str, Any]:
    """A PI Point attribute with units (an AF stream whose desiredUnits may name its own units)."""
    server = get(http, "/assetservers")["Items"][0]
    db = get(http, server["Links"]["Databases"])["Items"][0]
    pump = get(http, db["Links"]["Elements"], searchFullHierarchy="true", templateName="Pump", maxCount=1)
    attrs = get(http, pump["Items"][0]["Links"]["Attributes"])["Items"]
    return next(
        a for a in attrs if a["DataReferencePlugIn"] == "PI Point" and a["DefaultUnitsNameAbbreviation"]
    )


def errors(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["Errors"], body
    return str(body["Errors"][0])


def test_interpolated_at_times_equals_interpolated_on_the_same_grid(
    http: httpx.Client, sinusoid: str
) -> None:
    url = f"/streams/{sinusoid}"
    grid = get(http, f"{url}/interpolated", startTime=TIMES[0], endTime=TIMES[-1], interval="7m")
    # Given out of order: PI sorts the values by time (sortOrder, Ascending by default).
    shuffled = [TIMES[3], TIMES[0], TIMES[-1], *TIMES[1:3], *TIMES[4:-1]]
    at_times = get(http, f"{url}/interpolatedattimes", time=shuffled)
    assert at_times == grid
    assert [i["Timestamp"] for i in at_times["Items"]] == TIMES
    descending = get(http, f"{url}/interpolatedattimes", time=TIMES, sortOrder="descending")
    assert descending["Items"] == grid["Items"][::-1]


def test_interpolated_at_times_keeps_duplicates_and_selects_fields(http: httpx.Client, sinusoid: str) -> None:
    body = get(
        http,
        f"/streams/{sinusoid}/interpolatedattimes",
        time=[TIMES[1], TIMES[1], "*-1h"],
        selectedFields="Items.Timestamp;Items.Value",
    )
    assert list(body) == ["Items"]
    stamps = [i["Timestamp"] for i in body["Items"]]
    assert stamps == [TIMES[1], TIMES[1], "2024-05-01T11:00:00Z"]
    assert body["Items"][0] == body["Items"][1] and set(body["Items"][0]) == {"Timestamp", "Value"}


@pytest.mark.parametrize("mode", MODES)
def test_recorded_at_times_equals_recorded_at_time_per_time(
    http: httpx.Client, sinusoid: str, mode: str
) -> None:
    url = f"/streams/{sinusoid}"
    # Exact hits: timestamps of recorded values, beside the grid times that hold none.
    recorded = get(http, f"{url}/recorded", startTime=TIMES[0], endTime=TIMES[-1], maxCount=3)["Items"]
    times = sorted({*TIMES, *(r["Timestamp"] for r in recorded)})
    expected = [get(http, f"{url}/recordedattime", time=t, retrievalMode=mode) for t in times]
    body = get(http, f"{url}/recordedattimes", time=times[::-1], retrievalMode=mode)
    assert body["Items"] == expected
    assert body["UnitsAbbreviation"] == expected[0]["UnitsAbbreviation"] and body["Links"] == {}
    down = get(http, f"{url}/recordedattimes", time=times, retrievalMode=mode, sortOrder="Descending")
    assert down["Items"] == expected[::-1]
    if mode == "Exact":
        hits = [e for e in expected if not isinstance(e["Value"], dict)]
        assert [e["Timestamp"] for e in hits] == [r["Timestamp"] for r in recorded]


def test_recorded_at_times_default_mode_is_auto(http: httpx.Client, sinusoid: str) -> None:
    url = f"/streams/{sinusoid}/recordedattimes"
    assert get(http, url, time=TIMES) == get(http, url, time=TIMES, retrievalMode="Auto")


def test_at_times_on_an_af_attribute_read_its_point(
    http: httpx.Client, sinusoid: str, pump_flow: dict[str, Any]
) -> None:
    point = get(http, pump_flow["Links"]["Point"])
    units = pump_flow["DefaultUnitsNameAbbreviation"]
    for action in ("interpolatedattimes", "recordedattimes"):
        via_attribute = get(http, f"/streams/{pump_flow['WebId']}/{action}", time=TIMES, desiredUnits=units)
        direct = get(http, f"/streams/{point['WebId']}/{action}", time=TIMES)
        assert [(i["Timestamp"], i["Value"]) for i in via_attribute["Items"]] == [
            (i["Timestamp"], i["Value"]) for i in direct["Items"]
        ]
        assert via_attribute["UnitsAbbreviation"] == units


COMMON_ERRORS = [
    ({}, "At least one 'time' parameter is required"),
    ({"time": "noon-ish"}, "'noon-ish' given for 'time'"),
    ({"time": "*", "sortOrder": "Upwards"}, "sortOrder 'Upwards'"),
    ({"time": "*", "desiredUnits": "degC"}, "it is a PI point"),
]
BAD_PARAMETERS = [
    *[("interpolatedattimes", p, f) for p, f in COMMON_ERRORS],
    *[("recordedattimes", p, f) for p, f in COMMON_ERRORS],
    ("interpolatedattimes", {"time": "*", "filterExpression": "'.'>1"}, "filterExpression"),
    ("interpolatedattimes", {"time": "*", "includeFilteredValues": "maybe"}, "includeFilteredValues"),
    ("recordedattimes", {"time": "*", "retrievalMode": "Nearest"}, "retrievalMode 'Nearest'"),
]


@pytest.mark.parametrize(("action", "params", "fragment"), BAD_PARAMETERS)
def test_at_times_refuse_bad_parameters(
    http: httpx.Client, sinusoid: str, action: str, params: dict[str, str], fragment: str
) -> None:
    assert fragment in errors(http.get(f"/streams/{sinusoid}/{action}", params=params), 400)


def test_at_times_unit_conversion_and_unknown_streams(http: httpx.Client, pump_flow: dict[str, Any]) -> None:
    url = f"/streams/{pump_flow['WebId']}/interpolatedattimes"
    assert "conversion is not implemented" in errors(
        http.get(url, params={"time": "*", "desiredUnits": "furlong"}), 400
    )
    by_name = http.get(url, params={"time": "*", "desiredUnits": pump_flow["DefaultUnitsName"]})
    assert by_name.status_code == 200, by_name.text
    assert "F1DPnope" in errors(http.get("/streams/F1DPnope/recordedattimes", params={"time": "*"}), 404)


def test_at_times_count_against_the_item_limit(emulator_factory: Callable[..., Emulator]) -> None:
    small = emulator_factory("--seed", "42", "--tags", "20", "--clock", "frozen:2024-05-01T12:00:00Z",
                             "--max-returned-items", "5")  # fmt: skip
    with httpx.Client(base_url=small.api, timeout=30.0) as client:
        web_id = get(client, "/points", path="\\\\PISRV01\\SINUSOID")["WebId"]
        for action in ("interpolatedattimes", "recordedattimes"):
            url = f"/streams/{web_id}/{action}"
            assert len(get(client, url, time=TIMES[:5])["Items"]) == 5
            assert "greater than the maximum allowed (5)" in errors(
                client.get(url, params={"time": TIMES[:6]}), 400
            )


# Stream sets: ad hoc (repeated webId) and by parent (an element's PI Point attributes)


@pytest.fixture(scope="module")
def pump(http: httpx.Client) -> dict[str, Any]:
    server = get(http, "/assetservers")["Items"][0]
    db = get(http, server["Links"]["Databases"])["Items"][0]
    return get(http, db["Links"]["Elements"], searchFullHierarchy="true", templateName="Pump", maxCount=1)[
        "Items"
    ][0]


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("interpolatedattimes", {}),
        ("interpolatedattimes", {"sortOrder": "Descending"}),
        ("recordedattimes", {}),
        ("recordedattimes", {"retrievalMode": "After", "sortOrder": "Descending"}),
    ],
)
def test_ad_hoc_stream_set_at_times_is_each_streams_read(
    http: httpx.Client, sinusoid: str, pump_flow: dict[str, Any], action: str, params: dict[str, str]
) -> None:
    tank = get(http, "/points", path="\\\\PISRV01\\Tank 12 (North) Level")["WebId"]
    web_ids = [tank, pump_flow["WebId"], sinusoid]  # kept in request order: sortOrder orders the times
    body = get(http, f"/streamsets/{action}", webId=web_ids, time=TIMES[:4], **params)
    assert body["Links"] == {} and [i["WebId"] for i in body["Items"]] == web_ids
    for item, web_id in zip(body["Items"], web_ids, strict=True):
        single = get(http, f"/streams/{web_id}/{action}", time=TIMES[:4], **params)
        assert item["Items"] == single["Items"] and item["UnitsAbbreviation"] == single["UnitsAbbreviation"]
        kind = "points" if web_id != pump_flow["WebId"] else "attributes"
        assert item["Links"]["Source"].endswith(f"/{kind}/{web_id}")
    assert body["Items"][1]["Path"] == pump_flow["Path"] and body["Items"][2]["Name"] == "SINUSOID"


@pytest.mark.parametrize("action", ["interpolatedattimes", "recordedattimes", "recordedattime"])
def test_stream_set_at_times_of_an_element_is_the_ad_hoc_read_of_its_attributes(
    http: httpx.Client, pump: dict[str, Any], action: str
) -> None:
    times = TIMES[:3] if action != "recordedattime" else TIMES[0]
    by_parent = get(http, f"/streamsets/{pump['WebId']}/{action}", time=times, sortOrder="Descending")
    web_ids = [i["WebId"] for i in by_parent["Items"]]
    streams = [
        a["WebId"] for a in get(http, pump["Links"]["Attributes"])["Items"] if a["DataReferencePlugIn"]
    ]
    assert sorted(web_ids) == sorted(streams) and len(web_ids) >= 3
    ad_hoc = get(http, f"/streamsets/{action}", webId=web_ids, time=times, sortOrder="Descending")
    assert by_parent == ad_hoc
    if action != "recordedattime":
        # sortOrder orders the times; the attributes keep the order the other by-parent reads give them.
        assert web_ids == [i["WebId"] for i in get(http, f"/streamsets/{pump['WebId']}/end")["Items"]]
        assert [v["Timestamp"] for v in by_parent["Items"][0]["Items"]] == sorted(
            (v["Timestamp"] for v in by_parent["Items"][0]["Items"]), reverse=True
        )
    named = get(http, f"/streamsets/{pump['WebId']}/{action}", time=times, nameFilter="Flow")
    assert [i["Name"] for i in named["Items"]] == ["Flow"]


def test_stream_set_at_times_refuse_bad_requests(http: httpx.Client, sinusoid: str) -> None:
    for action in ("interpolatedattimes", "recordedattimes"):
        assert "'webId'" in errors(http.get(f"/streamsets/{action}", params={"time": "*"}), 400)
        assert "'time'" in errors(http.get(f"/streamsets/{action}", params={"webId": sinusoid}), 400)
        assert "F1DPgone" in errors(
            http.get(f"/streamsets/{action}", params={"webId": [sinusoid, "F1DPgone"], "time": "*"}), 404
        )
        assert "sortOrder" in errors(
            http.get(f"/streamsets/{action}", params={"webId": sinusoid, "time": "*", "sortOrder": "x"}), 400
        )
    assert "filterExpression" in errors(
        http.get(
            "/streamsets/interpolatedattimes",
            params={"webId": sinusoid, "time": "*", "filterExpression": "1"},
        ),
        400,
    )
    assert "retrievalMode" in errors(
        http.get(
            "/streamsets/recordedattimes", params={"webId": sinusoid, "time": "*", "retrievalMode": "x"}
        ),
        400,
    )
    assert "was not found" in errors(
        http.get("/streamsets/F1EmNoSuchElement/recordedattimes", params={"time": "*"}), 404
    )


def test_stream_set_at_times_count_all_streams_against_the_item_limit(
    emulator_factory: Callable[..., Emulator],
) -> None:
    small = emulator_factory("--seed", "42", "--tags", "20", "--clock", "frozen:2024-05-01T12:00:00Z",
                             "--max-returned-items", "5")  # fmt: skip
    with httpx.Client(base_url=small.api, timeout=30.0) as client:
        server = get(client, "/dataservers")["Items"][0]
        web_ids = [p["WebId"] for p in get(client, server["Links"]["Points"], maxCount=2)["Items"]]
        for action in ("interpolatedattimes", "recordedattimes"):
            assert len(get(client, f"/streamsets/{action}", webId=web_ids, time=TIMES[:2])["Items"]) == 2
            over = client.get(f"/streamsets/{action}", params={"webId": web_ids, "time": TIMES[:3]})
            assert "greater than the maximum allowed (5)" in errors(over, 400)
