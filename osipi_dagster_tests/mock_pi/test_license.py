"""GET dataservers/{webId}/license?module= (DataServer GetLicense) over real HTTP: PI's shape (string amounts,
"Infinity" for no limit), case-sensitive module names, 404 for an unknown module and 400 without one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from mock_pi.catalog import Catalog
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.mock_pi.af_expected import get


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


def point_counts() -> dict[str, int]:
    catalog = Catalog(seed=42, tags=500, data_servers=2)
    return {s.name: len(catalog.server_indices(s)) for s in catalog.servers}


def test_point_and_stream_counts_of_each_server(http: httpx.Client) -> None:
    counts = point_counts()
    assert sum(counts.values()) == 500
    for server in get(http, "/dataservers")["Items"]:
        url = f"/dataservers/{server['WebId']}/license"
        points = counts[server["Name"]]
        listed = len(get(http, server["Links"]["Points"], maxCount=1000)["Items"])
        assert listed == points
        streams = get(http, url, module="pibasess.MaxAggregatePointModuleCount")
        assert streams == {
            "AmountLeft": str(10_000 - points),
            "AmountUsed": str(points),
            "Name": "pibasess.MaxAggregatePointModuleCount",
            "TotalAmount": "10000",
            "Links": {},
        }
        assert get(http, url, module="pibasess.MaxPointCount") == {
            "AmountLeft": "Infinity",
            "AmountUsed": str(points),
            "Name": "pibasess.MaxPointCount",
            "TotalAmount": "Infinity",
            "Links": {},
        }
        modules = get(http, url, module="pibasess.MaxModuleCount", selectedFields="AmountUsed;Name")
        assert modules == {"AmountUsed": "0", "Name": "pibasess.MaxModuleCount"}


def test_unknown_or_missing_module(http: httpx.Client) -> None:
    server = get(http, "/dataservers")["Items"][0]
    url = f"/dataservers/{server['WebId']}/license"
    for module in ("pibasess.maxpointcount", "Component.Module"):
        response = http.get(url, params={"module": module})
        assert response.status_code == 404, response.text
        assert (
            f"'{module}'" in response.json()["Errors"][0] and "case-sensitive" in response.json()["Errors"][0]
        )
    missing = http.get(url)
    assert missing.status_code == 400 and "'module'" in missing.json()["Errors"][0]
    unknown = http.get("/dataservers/F1DSnope/license", params={"module": "pibasess.MaxPointCount"})
    assert unknown.status_code == 404 and "F1DSnope" in unknown.json()["Errors"][0]


def test_a_large_server_is_licensed_for_twice_its_points(emulator_factory: Callable[..., Emulator]) -> None:
    big = emulator_factory("--seed", "42", "--tags", "12000", "--data-servers", "1")
    with httpx.Client(base_url=big.api, timeout=30.0) as client:
        server = get(client, "/dataservers")["Items"][0]
        body = get(
            client, f"/dataservers/{server['WebId']}/license", module="pibasess.MaxAggregatePointModuleCount"
        )
    assert (body["AmountUsed"], body["TotalAmount"], body["AmountLeft"]) == ("12000", "25000", "13000")
