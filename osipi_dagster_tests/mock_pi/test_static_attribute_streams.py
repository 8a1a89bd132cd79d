"""Stream calls on an AF attribute with no data reference, over real HTTP.

PI Web API's reference (topics/stream.html): a stream is a PI point or an attribute with a data reference; "an
attribute without a data reference is not considered as a stream". Stream GetValue reads the attribute's value
(AFAttribute.GetValue works on static values), so streams/{webId}/value answers what attributes/{webId}/value does;
the time-series calls answer 409, the status PI documents for "the data reference does not support the method".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.mock_pi.af_expected import get

WINDOW = {"startTime": "2024-05-01T10:00:00Z", "endTime": "2024-05-01T11:00:00Z"}
SERIES_CALLS = [
    ("recorded", WINDOW),
    ("interpolated", WINDOW),
    ("plot", WINDOW),
    ("summary", WINDOW),
    ("end", {}),
    ("recordedattime", {"time": "*"}),
    ("recordedattimes", {"time": "*"}),
    ("interpolatedattimes", {"time": "*"}),
]


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def attributes(http: httpx.Client) -> list[dict[str, Any]]:
    """The attributes of a pump: static ones of several value types beside PI Point ones."""
    server = get(http, "/assetservers")["Items"][0]
    db = get(http, server["Links"]["Databases"])["Items"][0]
    pump = get(http, db["Links"]["Elements"], searchFullHierarchy="true", templateName="Pump", maxCount=1)
    return get(http, pump["Items"][0]["Links"]["Attributes"])["Items"]


@pytest.fixture(scope="module")
def static(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [a for a in attributes if a["DataReferencePlugIn"] == ""]
    assert len({a["Type"] for a in found}) >= 3, [a["Type"] for a in found]
    return found


def test_stream_value_of_a_static_attribute_is_its_value(
    http: httpx.Client, static: list[dict[str, Any]]
) -> None:
    for attribute in static:
        expected = get(http, attribute["Links"]["Value"])
        assert attribute["Links"]["Value"].endswith(f"/attributes/{attribute['WebId']}/value")
        assert get(http, f"/streams/{attribute['WebId']}/value") == expected
        # A static value is the same at any time; the time string is still checked.
        assert get(http, f"/streams/{attribute['WebId']}/value", time="*-3d") == expected
        assert get(http, f"/streams/{attribute['WebId']}/value", selectedFields="Value") == {
            "Value": expected["Value"]
        }
    bad = http.get(f"/streams/{static[0]['WebId']}/value", params={"time": "whenever"})
    assert bad.status_code == 400 and "whenever" in bad.json()["Errors"][0]


@pytest.mark.parametrize(("action", "params"), SERIES_CALLS)
def test_time_series_calls_on_a_static_attribute_are_409(
    http: httpx.Client, static: list[dict[str, Any]], action: str, params: dict[str, str]
) -> None:
    attribute = static[0]
    response = http.get(f"/streams/{attribute['WebId']}/{action}", params=params)
    assert response.status_code == 409, response.text
    (message,) = response.json()["Errors"]
    assert attribute["Path"] in message and "no data reference" in message


def test_pi_point_attributes_and_unknown_web_ids_are_unchanged(
    http: httpx.Client, attributes: list[dict[str, Any]]
) -> None:
    point_attribute = next(a for a in attributes if a["DataReferencePlugIn"] == "PI Point")
    assert get(http, f"/streams/{point_attribute['WebId']}/recorded", **WINDOW)["Items"]
    unknown = http.get("/streams/F1AbEnotAnAttribute/recorded", params=WINDOW)
    assert unknown.status_code == 404 and "Unknown or invalid WebID" in unknown.json()["Errors"][0]


def test_a_static_attribute_in_an_ad_hoc_stream_set_is_409(
    http: httpx.Client, attributes: list[dict[str, Any]], static: list[dict[str, Any]]
) -> None:
    point_attribute = next(a for a in attributes if a["DataReferencePlugIn"] == "PI Point")
    for action, params in (("recorded", WINDOW), ("value", {}), ("end", {})):
        response = http.get(
            f"/streamsets/{action}",
            params={**params, "webId": [point_attribute["WebId"], static[0]["WebId"]]},
        )
        assert response.status_code == 409 and static[0]["Path"] in response.json()["Errors"][0], (
            response.text
        )


def test_writing_a_static_attribute_as_a_stream_is_refused(
    http: httpx.Client, static: list[dict[str, Any]]
) -> None:
    """Writing a static value is an AF change, which the emulator does not implement: a 400 that says so, and the
    value is unchanged."""
    attribute = static[0]
    before = get(http, attribute["Links"]["Value"])
    headers = {"X-Requested-With": "test"}
    one = http.post(f"/streams/{attribute['WebId']}/value", json={"Value": 1}, headers=headers)
    many = http.post(f"/streams/{attribute['WebId']}/recorded", json=[{"Value": 1}], headers=headers)
    for response in (one, many):
        assert response.status_code == 400 and "does not implement" in response.json()["Errors"][0], (
            response.text
        )
    assert get(http, attribute["Links"]["Value"]) == before
