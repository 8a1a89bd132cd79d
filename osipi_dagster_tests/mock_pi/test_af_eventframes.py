"""mock_pi event frames over HTTP: search modes against independently written definitions, filters, child frames,
referenced elements, captured attribute values, stream sets of a frame, in-progress frames and the admin close."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_pi.af import EventFrame
from mock_pi.pitime import format_us
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.mock_pi.af_expected import (
    NOW_ISO,
    NOW_US,
    OPEN,
    all_frames,
    archive,
    get,
    in_mode,
    model,
    us,
)


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.api, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def frames_url(http: httpx.Client) -> str:
    db = get(http, "/assetdatabases", path="\\\\PIAF01\\Plant Operations")
    return db["Links"]["EventFrames"]


WINDOW = ("2024-04-30T06:00:00Z", "2024-05-01T06:00:00Z")


@pytest.mark.parametrize("mode", ["Overlapped", "Inclusive", "StartInclusive", "EndInclusive", "InProgress"])
@pytest.mark.parametrize("full", [False, True])
def test_window_search_modes(http: httpx.Client, frames_url: str, mode: str, full: bool) -> None:
    lo, hi = us(WINDOW[0]), us(WINDOW[1]) if mode != "InProgress" else NOW_US
    body = get(http, frames_url, startTime=format_us(lo), endTime=format_us(hi), searchMode=mode,
               searchFullHierarchy=str(full).lower(), maxCount=1000)  # fmt: skip
    expected = sorted(
        (ef.name.lower(), ef.path) for ef, s, e in all_frames(0, "2024-04-25T00:00:00Z", children=full)
        if in_mode(mode, s, e, lo, hi)
    )  # fmt: skip
    assert expected, f"{mode}: the fixture data should have matches"
    # Sorted by name (phases of different batches share names, so ties may come in any order).
    assert [f["Name"].lower() for f in body["Items"]] == [name for name, _ in expected]
    assert sorted((f["Name"].lower(), f["Path"]) for f in body["Items"]) == expected


def test_default_window_is_last_8_hours_sorted_by_name(http: httpx.Client, frames_url: str) -> None:
    body = get(http, frames_url)
    lo = us("2024-05-01T04:00:00Z")
    expected = sorted(ef.name for ef, s, e in all_frames(0, "2024-04-27T00:00:00Z", children=False)
                      if in_mode("Overlapped", s, e, lo, NOW_US))  # fmt: skip
    assert [f["Name"] for f in body["Items"]] == expected


def test_walk_search_modes(http: httpx.Client, frames_url: str) -> None:
    at = "2024-05-01T06:00:00Z"
    frames = list(all_frames(0, "2024-04-20T00:00:00Z", children=False))
    back = get(http, frames_url, searchMode="BackwardFromStartTime", startTime=at, maxCount=15)
    want = sorted((f for f in frames if f[1] <= us(at)), key=lambda f: f[1], reverse=True)[:15]
    assert [f["Name"] for f in back["Items"]] == [f[0].name for f in want]
    assert "Next" in back["Links"]
    fwd_end = get(http, frames_url, searchMode="ForwardFromEndTime", startTime=at)
    ends = sorted(
        (f for f in frames if f[2] is None or f[2] > us(at)), key=lambda f: (f[2] or 1 << 62, f[0].name)
    )
    assert [f["Name"] for f in fwd_end["Items"]] == [f[0].name for f in ends]
    open_back = get(http, frames_url, searchMode="BackwardInProgress", startTime="*")
    want_open = sorted((f for f in frames if f[2] is None), key=lambda f: f[1], reverse=True)
    assert [f["Name"] for f in open_back["Items"]] == [f[0].name for f in want_open]
    bad = http.get(frames_url, params={"searchMode": "ForwardFromStartTime", "endTime": "*"})
    assert bad.status_code == 400 and "endTime" in bad.json()["Errors"][0]


def test_filters(http: httpx.Client, frames_url: str) -> None:
    window = {"startTime": "2024-04-29T00:00:00Z", "endTime": "*"}
    frames = [f[0] for f in all_frames(0, "2024-04-25T00:00:00Z", children=False)
              if in_mode("Overlapped", f[1], f[2], us(window["startTime"]), NOW_US)]  # fmt: skip
    alarms = get(http, frames_url, templateName="Alarm", severity=["Major", "critical"], **window)["Items"]
    assert sorted(f["Name"] for f in alarms) == sorted(
        ef.name for ef in frames if ef.template.name == "Alarm" and ef.severity in ("Major", "Critical")
    )
    assert {f["CanBeAcknowledged"] for f in alarms} == {True}
    target = frames[0].primary
    by_ref = get(http, frames_url, referencedElementNameFilter=target.name, **window)["Items"]
    assert sorted(f["Name"] for f in by_ref) == sorted(
        ef.name for ef in frames if any(r.name == target.name for r in ef.refs)
    )
    el_frames = get(http, f"/elements/{target.web_id}/eventframes", **window)["Items"]
    assert sorted(f["Name"] for f in el_frames) == sorted(ef.name for ef in frames if target in ef.refs)
    named = get(http, frames_url, nameFilter="Downtime-20240430-*", categoryName="reliability", **window)[
        "Items"
    ]
    assert sorted(f["Name"] for f in named) == sorted(
        ef.name for ef in frames if ef.name.startswith("Downtime-20240430-")
    )
    by_start = get(http, frames_url, sortField="StartTime", sortOrder="Descending", **window)["Items"]
    starts = [f["StartTime"] for f in by_start]
    assert starts == sorted(starts, reverse=True) and len(starts) == len(frames)
    assert http.get(frames_url, params={"severity": "Apocalyptic"}).status_code == 400
    assert http.get(frames_url, params={"searchMode": "Sideways"}).status_code == 400
    assert http.get(frames_url, params={"startTime": "not a time"}).status_code == 400


def _a_closed_batch() -> EventFrame:
    return next(ef for ef, s, e in all_frames(0, "2024-04-30T00:00:00Z", children=False)
                if ef.template.name == "Batch" and e is not None)  # fmt: skip


def test_event_frame_children_and_references(http: httpx.Client) -> None:
    batch = _a_closed_batch()
    body = get(http, f"/eventframes/{batch.web_id}")
    assert (body["Name"], body["TemplateName"], body["HasChildren"]) == (batch.name, "Batch", True)
    assert (body["StartTime"], body["EndTime"]) == (
        format_us(batch.start_us),
        format_us(batch.planned_end_us),
    )
    assert body["RefElementWebIds"] == [r.web_id for r in batch.refs]
    assert get(http, "/eventframes", path=batch.path)["WebId"] == batch.web_id
    window = {"startTime": body["StartTime"], "endTime": body["EndTime"]}
    phases = get(http, body["Links"]["EventFrames"], sortField="StartTime", **window)["Items"]
    assert [(p["Name"], p["StartTime"], p["EndTime"]) for p in phases] == [
        (c.name, format_us(c.start_us), format_us(c.planned_end_us)) for c in batch.children
    ]
    assert phases[0]["Links"]["Parent"] == body["Links"]["Self"]
    assert phases[1]["Path"] == f"{batch.path}\\EventFrames[React]"
    refs = get(http, body["Links"]["ReferencedElements"])["Items"]
    assert [r["WebId"] for r in refs] == body["RefElementWebIds"]
    assert [r["TemplateName"] for r in refs][1] == "Unit"
    assert get(http, body["Links"]["PrimaryReferencedElement"])["WebId"] == refs[0]["WebId"]


def test_captured_attribute_values(http: httpx.Client) -> None:
    batch = _a_closed_batch()
    attrs = {a["Name"]: a for a in get(http, f"/eventframes/{batch.web_id}/attributes")["Items"]}
    assert set(attrs) == {"Product", "Batch ID", "Target Quantity", "Temperature", "Operator"}
    temp = attrs["Temperature"]
    assert temp["DataReferencePlugIn"] == "PI Point" and temp["DefaultUnitsNameAbbreviation"] == "°C"
    point = model().attribute(temp["WebId"]).point  # type: ignore[union-attr]
    expected = archive().interpolate(point, [batch.planned_end_us])
    value = get(http, temp["Links"]["Value"])
    assert value["Timestamp"] == format_us(batch.planned_end_us)
    assert value["Value"] == pytest.approx(float(expected.value[0]), rel=1e-6)
    assert get(http, attrs["Batch ID"]["Links"]["Value"])["Value"] == batch.name
    # The frame as a stream set: values at its end, recorded data inside its own range by default.
    by_parent = get(http, f"/streamsets/{batch.web_id}/value")["Items"]
    assert [(i["Name"], i["Value"]["Timestamp"]) for i in by_parent] == [("Temperature", value["Timestamp"])]
    recorded = get(http, f"/streamsets/{batch.web_id}/recorded")["Items"][0]["Items"]
    stamps = [v["Timestamp"] for v in recorded]
    assert stamps and format_us(batch.start_us) <= stamps[0] and stamps[-1] <= format_us(batch.planned_end_us)
    assert get(http, f"/streams/{temp['WebId']}/recorded")["Items"] == recorded


def test_in_progress_frames_and_admin_close(emulator_factory: Any) -> None:
    emu = emulator_factory("--seed", "42", "--tags", "500", "--clock", f"frozen:{NOW_ISO}", "--admin")
    with httpx.Client(base_url=emu.api, timeout=30.0) as http:
        db = get(http, "/assetdatabases", path="\\\\PIAF01\\Plant Operations")
        open_frames = get(http, db["Links"]["EventFrames"], searchMode="InProgress", startTime="*-3d")[
            "Items"
        ]
        expected = sorted(
            ef.name for ef, s, e in all_frames(0, "2024-04-25T00:00:00Z", children=False) if e is None
        )
        assert [f["Name"] for f in open_frames] == expected and expected
        target = open_frames[0]
        assert (target["EndTime"], target["AreValuesCaptured"]) == (OPEN, False)
        close = f"{emu.root}/admin/eventframes/{target['WebId']}/close"
        too_early = http.post(close, json={"EndTime": "2000-01-01T00:00:00Z"})
        assert too_early.status_code == 400 and "StartTime" in too_early.json()["Errors"][0]
        closed = http.post(close, json={"EndTime": "2024-05-01T11:59:00Z"})
        assert closed.status_code == 200, closed.text
        assert (closed.json()["EndTime"], closed.json()["AreValuesCaptured"]) == (
            "2024-05-01T11:59:00Z",
            True,
        )
        again = get(http, f"/eventframes/{target['WebId']}")
        assert again["EndTime"] == "2024-05-01T11:59:00Z"
        still_open = get(http, db["Links"]["EventFrames"], searchMode="InProgress", startTime="*-3d")["Items"]
        assert [f["Name"] for f in still_open] == expected[1:]
        assert http.post(close, json={}).status_code == 409
        if len(still_open) > 1:
            now_close = http.post(f"{emu.root}/admin/eventframes/{still_open[0]['WebId']}/close")
            assert now_close.status_code == 200 and now_close.json()["EndTime"] == NOW_ISO
        assert http.post(f"{emu.root}/admin/eventframes/F1FmNOPE/close").status_code == 404


def test_admin_close_needs_admin_mode(http: httpx.Client, emulator_factory: Any) -> None:
    emu = emulator_factory("--seed", "42", "--tags", "50", "--clock", f"frozen:{NOW_ISO}")
    ef = next(ef for ef, s, e in all_frames(0, "2024-04-30T00:00:00Z", children=False) if e is None)
    r = httpx.post(f"{emu.root}/admin/eventframes/{ef.web_id}/close", json={})
    assert r.status_code == 404


def test_unknown_event_frames(http: httpx.Client) -> None:
    for url in (
        "/eventframes/F1FmNOPE",
        "/eventframes/F1FmNOPE/attributes",
        "/eventframes/F1FmNOPE/eventframes",
    ):
        r = http.get(url)
        assert r.status_code == 404 and "NOPE" in r.json()["Errors"][0]
    future = "\\\\PIAF01\\Plant Operations\\EventFrames[Batch-20240502-0001]"
    assert http.get("/eventframes", params={"path": future}).status_code == 404
