"""Batch in PI's real format against the emulator: ParentIds + JSONPath Parameters, RequestTemplate fan-out with
per-item statuses (a partial failure inside the fan-out), and event-frame attributes read in one POST /batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi import batch as batch_mod
from osipi_dagster.lib.piwebapi.decode import decode_timed_value
from osipi_dagster.lib.piwebapi.errors import PIWebAPIError
from osipi_dagster_tests.client.expected import Expected
from osipi_dagster_tests.emulator import Emulator


@pytest.fixture(scope="module")
def pi(emulator: Emulator):  # type: ignore[no-untyped-def]
    with PIWebAPIClient(ClientConfig(emulator.api)) as client:
        yield client


@pytest.fixture(scope="module")
def element_with_mixed_attributes(pi: PIWebAPIClient) -> tuple[str, list[dict[str, Any]]]:
    """An element whose attributes include both PI Point references and static values."""
    db = pi.asset_databases(pi.asset_servers()[0])[0]
    for page in pi.iter_collection(f"assetdatabases/{db.web_id}/elements", [("searchFullHierarchy", "true")]):
        for element in page:
            attrs = pi.get(f"elements/{element['WebId']}/attributes")["Items"]
            refs = {bool(a["DataReferencePlugIn"]) for a in attrs}
            if refs == {True, False}:
                return element["WebId"], attrs
    raise AssertionError("the emulator's AF model has no element with both PI Point and static attributes")


def test_parent_ids_and_jsonpath_parameters(pi: PIWebAPIClient, emulator: Emulator) -> None:
    point = Expected().point(3)
    requests = {
        "pt": batch_mod.get_request(pi.url("points", [("path", point.path), ("selectedFields", "WebId")])),
        "rec": {
            "Method": "GET",
            "Resource": pi.url("streams/{0}/recorded", [("startTime", "*-1h"), ("endTime", "*")]),
            "Parameters": ["$.pt.Content.WebId"],
            "ParentIds": ["pt"],
        },
    }
    results = batch_mod.execute(pi.session, requests)
    assert results["pt"].status == 200 and results["pt"].content == {"WebId": point.web_id}
    direct = pi.get(f"streams/{point.web_id}/recorded", [("startTime", "*-1h"), ("endTime", "*")])
    assert results["rec"].status == 200 and results["rec"].items is None
    assert results["rec"].content["Items"] == direct["Items"] and len(direct["Items"]) > 0


def test_request_template_reports_each_item_status(
    pi: PIWebAPIClient, element_with_mixed_attributes: tuple[str, list[dict[str, Any]]]
) -> None:
    element, attrs = element_with_mixed_attributes
    requests = {
        "attrs": batch_mod.get_request(pi.url(f"elements/{element}/attributes")),
        "ends": batch_mod.template_request(
            pi.url("streams/{0}/end"), ["$.attrs.Content.Items[*].WebId"], ["attrs"]
        ),
    }
    results = batch_mod.execute(pi.session, requests)
    fan = results["ends"]
    # Static attributes are not streams: their sub-requests fail (409, the data reference does not support the
    # method) while the PI Point ones succeed → 207.
    assert fan.status == 207 and fan.content["Total"] == len(attrs)
    assert fan.items is not None and len(fan.items) == len(attrs)
    for attr, item in zip(attrs, fan.items, strict=True):
        if attr["DataReferencePlugIn"]:
            assert item.status == 200
            assert item.content == pi.get(f"streams/{attr['WebId']}/end")
        else:
            assert item.status == 409 and not item.ok
            assert attr["Path"] in item.content["Errors"][0]


def test_list_and_fan_out_nulls_the_404s_and_raises_other_failures(
    pi: PIWebAPIClient, element_with_mixed_attributes: tuple[str, list[dict[str, Any]]]
) -> None:
    element, attrs = element_with_mixed_attributes
    before = pi.stats.http_calls
    # An attribute's WebId names no element: every fan-out item answers 404 and is absent, the listing is kept.
    listed = batch_mod.list_and_fan_out(
        pi.session,
        {element: pi.url(f"elements/{element}/attributes")},
        pi.url("elements/{0}"),
        web_ids={element: element},
    )
    assert pi.stats.http_calls - before == 1
    got = listed[element]
    assert [x.item["WebId"] for x in got] == [a["WebId"] for a in attrs]
    assert all(x.content is None for x in got)
    # Any other failure raises: a static attribute is not a stream (409).
    with pytest.raises(PIWebAPIError) as refused:
        batch_mod.list_and_fan_out(
            pi.session, {element: pi.url(f"elements/{element}/attributes")}, pi.url("streams/{0}/end")
        )
    static = next(a for a in attrs if not a["DataReferencePlugIn"])
    assert refused.value.status == 409 and static["WebId"] in str(refused.value)
    # The advice points at the static value, not at retrying.
    assert "attributes/{webId}/value" in str(refused.value) and "retry" not in refused.value.advice


def test_list_and_fan_out_pages_the_listing(
    pi: PIWebAPIClient, element_with_mixed_attributes: tuple[str, list[dict[str, Any]]]
) -> None:
    element, attrs = element_with_mixed_attributes
    assert len(attrs) >= 3
    listed = batch_mod.list_and_fan_out(
        pi.session,
        {element: pi.url(f"elements/{element}/attributes")},
        pi.url("attributes/{0}/value"),
        page_size=2,
    )
    assert [x.item["WebId"] for x in listed[element]] == [a["WebId"] for a in attrs]
    for x in listed[element]:
        assert x.content == pi.get(f"attributes/{x.item['WebId']}/value")


def test_event_frame_attributes_in_one_batch_with_exact_captured_values(pi: PIWebAPIClient) -> None:
    db = pi.asset_databases(pi.asset_servers()[0])[0]
    start, end = datetime(2024, 4, 30, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)
    frames = pl.concat(list(pi.iter_event_frames(db, start, end, children=False)))
    closed = frames.filter(~pl.col("in_progress"))["web_id"].to_list()[:10]
    assert len(closed) == 10

    before = pi.stats.http_calls
    got = pl.concat(list(pi.iter_event_frame_attributes(closed)))
    assert pi.stats.http_calls - before == 1  # listing + template for 10 frames: one POST /batch

    # Independent reads: the by-parent stream set (captured PI Point values) and each static attribute's value.
    rows = 0
    for frame in closed:
        listing = pi.get(f"eventframes/{frame}/attributes")["Items"]
        captured = {i["WebId"]: i["Value"] for i in pi.get(f"streamsets/{frame}/value")["Items"]}
        mine = got.filter(pl.col("event_frame_web_id") == frame)
        assert mine["web_id"].to_list() == [a["WebId"] for a in listing]
        for attr, row in zip(listing, mine.iter_rows(named=True), strict=True):
            value = (
                captured[attr["WebId"]]
                if attr["DataReferencePlugIn"]
                else pi.get(f"attributes/{attr['WebId']}/value")
            )
            want = decode_timed_value(value)
            assert row["timestamp"] == datetime.fromisoformat(value["Timestamp"].replace("Z", "+00:00"))
            for k in ("value", "value_text", "digital_code", "is_system", "good"):
                assert row[k] == want[k], (attr["Name"], k)
            rows += 1
    assert rows == len(got) and rows > 20
