"""Equinor's tagreader (PI Web API handler) against mock_pi, each result compared with a raw httpx read.

tagreader's operations on a PI Web API server: list_sources, connect, search by tag and/or description (with and
without descriptions), tag → WebId, get_units, get_descriptions, and reads RAW, INT, AVG, MIN, MAX, RNG, STD, VAR and
SNAPSHOT, with or without status, one tag or several. Each is tested here.

Configuration, as its docs allow for a non-Kerberos server: `auth=HTTPBasicAuth(...)` and `url=`. tagreader 6.3.0 also
resolves the data server's WebId for every search and tag lookup through its built-in default URL (Equinor's
server), whatever `url` the client was given (`generate_search_params` calls `get_piwebapi_source_to_webid_dict`
without it), so the tests point that default at the emulator, as any user outside Equinor must.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import tagreader
import tagreader.web_handlers
from requests.auth import HTTPBasicAuth
from tagreader import ReaderType

from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.thirdparty.raw import PASSWORD, SERVER, USERNAME, RawPI, same_number, ts

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 11, tzinfo=UTC)
AUTH = HTTPBasicAuth(USERNAME, PASSWORD)
# Tag names with the characters tagreader escapes with a backslash in its point query (space / # % ( ) -).
SPECIAL = ["Température #3/A %", "Flow Line 2/B #7 %", "Tank 12 (North) Level", "Reactor R-101 Mode"]
SUMMARIES = {
    ReaderType.AVG: "Average",
    ReaderType.MIN: "Minimum",
    ReaderType.MAX: "Maximum",
    ReaderType.RNG: "Range",
    ReaderType.STD: "StdDev",
}


@pytest.fixture
def client(pi: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tagreader.IMSClient]:
    monkeypatch.setattr(tagreader.web_handlers, "get_url_pi", lambda: pi.api)
    imsclient = tagreader.IMSClient(datasource=SERVER, imstype="piwebapi", url=pi.api, auth=AUTH)
    imsclient.connect()
    yield imsclient
    imsclient.handler.session.close()


def utc_series(frame: pd.DataFrame, column: str) -> list[tuple[datetime, Any]]:
    """(UTC time, value) pairs of one column of a tagreader frame (its index is in the client's zone)."""
    index = frame.index.tz_convert("UTC")
    return [(t.to_pydatetime(), v) for t, v in zip(index, frame[column].tolist(), strict=True)]


def raw_value(value: Any) -> Any:
    """The number tagreader makes of a raw value: a digital state's code, NaN for a numeric tag's system state."""
    if isinstance(value, dict):
        return float(value["Value"]) if not value.get("IsSystem") else float("nan")
    return value


def assert_same(got: list[tuple[datetime, Any]], expected: list[tuple[datetime, Any]]) -> None:
    assert [t for t, _ in got] == [t for t, _ in expected]
    mismatched = [(t, a, b) for (t, a), (_, b) in zip(got, expected, strict=True) if not same_number(a, b)]
    assert not mismatched, mismatched[:5]


def test_list_sources_names_every_data_server(pi: Emulator, raw: RawPI) -> None:
    names = [s["Name"] for s in raw.get("/dataservers")["Items"]]
    assert len(names) == 2
    assert tagreader.list_sources("piwebapi", url=pi.api, auth=AUTH) == names


def test_connect_finds_the_data_server_and_not_an_unknown_one(client: tagreader.IMSClient) -> None:
    assert client.handler.verify_connection(SERVER) is True
    assert client.handler.verify_connection("PISRV99") is False


@pytest.mark.parametrize("pattern", ["SINUSOID", "U310-*", "*.ST", "U?00-LI*", "flow*"])
def test_search_by_tag_equals_the_name_filter(client: tagreader.IMSClient, raw: RawPI, pattern: str) -> None:
    expected = sorted((p["Name"], p["Descriptor"]) for p in raw.points(nameFilter=pattern))
    assert expected, f"no point matches {pattern}: the comparison would be empty"
    assert sorted(client.search(pattern)) == expected
    assert sorted(client.search(pattern, return_desc=False)) == [name for name, _ in expected]


@pytest.mark.parametrize(("tag", "desc"), [(None, "Tank level*"), (None, "*u310"), ("U3*", "*level*")])
def test_search_by_description(client: tagreader.IMSClient, raw: RawPI, tag: str | None, desc: str) -> None:
    expected = sorted(
        (p["Name"], p["Descriptor"])
        for p in raw.points()
        if fnmatch.fnmatch(p["Descriptor"].lower(), desc.lower())
        and (tag is None or fnmatch.fnmatch(p["Name"].lower(), tag.lower()))
    )
    assert expected
    assert sorted(client.search(tag=tag, desc=desc)) == expected


@pytest.mark.parametrize("name", SPECIAL)
def test_special_tag_names_search_and_resolve(client: tagreader.IMSClient, raw: RawPI, name: str) -> None:
    point = raw.point(name)
    assert client.search(name) == [(name, point["Descriptor"])]
    assert client.search(desc=point["Descriptor"]) == [(name, point["Descriptor"])]
    assert client.handler.tag_to_web_id(name) == point["WebId"]


def test_tag_to_web_id(client: tagreader.IMSClient, raw: RawPI) -> None:
    for name in ["SINUSOID", "U310-LI00012.PV"]:
        assert client.handler.tag_to_web_id(name) == raw.point(name)["WebId"]
    assert client.handler.tag_to_web_id("NO-SUCH-TAG") is None


def test_units_and_descriptions(client: tagreader.IMSClient, raw: RawPI) -> None:
    tags = ["SINUSOID", "Température #3/A %", "Reactor R-101 Mode", "U200-JI00018.PV"]
    points = {t: raw.point(t) for t in tags}
    assert client.get_units(tags) == {t: p["EngineeringUnits"] for t, p in points.items()}
    assert client.get_descriptions(tags) == {t: p["Descriptor"] for t, p in points.items()}
    assert client.get_units("SINUSOID") == {"SINUSOID": "ppm"}


@pytest.mark.parametrize(
    ("tag", "start", "end"),
    [
        ("SINUSOID", T0, T1),
        # system states (I/O Timeout) and questionable values between 01:00 and 03:00
        ("SINUSOID", T0 - timedelta(hours=9), T0 - timedelta(hours=7)),
        # sub-second timestamps, Shutdown and Under Range states
        ("Flow Line 2/B #7 %", T0 - timedelta(hours=10), T0 - timedelta(hours=8)),
        ("Reactor R-101 Mode", T0 - timedelta(hours=6), T1),
    ],
)
def test_raw_read_equals_recorded(
    client: tagreader.IMSClient, raw: RawPI, tag: str, start: datetime, end: datetime
) -> None:
    items = raw.stream(tag, "recorded", startTime=start.isoformat(), endTime=end.isoformat())["Items"]
    assert len(items) > 3
    frame = client.read(tag, start, end, read_type=ReaderType.RAW)
    assert_same(utc_series(frame, tag), [(ts(i["Timestamp"]), raw_value(i["Value"])) for i in items])


def test_raw_read_in_pages_loses_and_repeats_nothing(
    pi: Emulator, raw: RawPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_rows 20 tagreader pages on: each next read starts at the last timestamp it got."""
    monkeypatch.setattr(tagreader.web_handlers, "get_url_pi", lambda: pi.api)
    paged = tagreader.IMSClient(SERVER, "piwebapi", url=pi.api, auth=AUTH, handler_options={"max_rows": 20})
    start = T0 - timedelta(hours=2)
    items = raw.stream("SINUSOID", "recorded", startTime=start.isoformat(), endTime=T1.isoformat())["Items"]
    assert len(items) > 3 * 20
    frame = paged.read("SINUSOID", start, T1, read_type=ReaderType.RAW)
    assert_same(utc_series(frame, "SINUSOID"), [(ts(i["Timestamp"]), i["Value"]) for i in items])


@pytest.mark.parametrize("tag", ["SINUSOID", "Tank 12 (North) Level", "Reactor R-101 Mode"])
def test_interpolated_read(client: tagreader.IMSClient, raw: RawPI, tag: str) -> None:
    items = raw.stream(tag, "interpolated", startTime=T0.isoformat(), endTime=T1.isoformat(), interval="600s")
    frame = client.read(tag, T0, T1, ts=600, read_type=ReaderType.INT)
    expected = [(ts(i["Timestamp"]), raw_value(i["Value"])) for i in items["Items"]]
    assert len(expected) == 7
    assert_same(utc_series(frame, tag), expected)


@pytest.mark.parametrize("read_type", [*SUMMARIES, ReaderType.VAR])
def test_summary_reads(client: tagreader.IMSClient, raw: RawPI, read_type: ReaderType) -> None:
    summary_type = SUMMARIES.get(read_type, "StdDev")
    body = raw.stream(
        "SINUSOID",
        "summary",
        startTime=T0.isoformat(),
        endTime=T1.isoformat(),
        summaryType=summary_type,
        summaryDuration="600s",
    )
    expected = [(ts(i["Value"]["Timestamp"]), i["Value"]["Value"]) for i in body["Items"]]
    assert len(expected) == 6
    if read_type == ReaderType.VAR:
        expected = [(t, v**2) for t, v in expected]
    if read_type == ReaderType.MAX and expected[0][0] > T0:
        # tagreader moves Maximum timestamps one interval back, believing PI stamps them at the interval end;
        # PI (timeType Auto) stamps them at the maximum's own time, as the emulator does.
        expected = [(t - timedelta(seconds=600), v) for t, v in expected]
    frame = client.read("SINUSOID", T0, T1, ts=600, read_type=read_type)
    got = utc_series(frame, "SINUSOID")
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-12)


@pytest.mark.parametrize("at", [T1, T1 + timedelta(minutes=59, seconds=59)])
def test_snapshot_read(client: tagreader.IMSClient, raw: RawPI, at: datetime) -> None:
    """tagreader's snapshot is streams/{webId}/value at the end time."""
    value = raw.stream("SINUSOID", "value", time=at.isoformat())
    frame = client.read("SINUSOID", end_time=at, read_type=ReaderType.SNAPSHOT)
    assert utc_series(frame, "SINUSOID") == [(ts(value["Timestamp"]), value["Value"])]


def test_status_is_coded_from_good_questionable_substituted(client: tagreader.IMSClient, raw: RawPI) -> None:
    start, end = T0 - timedelta(hours=9), T0 - timedelta(hours=7)
    items = raw.stream("SINUSOID", "recorded", startTime=start.isoformat(), endTime=end.isoformat())["Items"]
    expected = [
        (ts(i["Timestamp"]), int(i["Questionable"]) + 2 * (1 - int(i["Good"])) + 4 * int(i["Substituted"]))
        for i in items
    ]
    assert {code for _, code in expected} >= {0, 1, 2}, (
        "the window must hold good, questionable and bad values"
    )
    frame = client.read("SINUSOID", start, end, read_type=ReaderType.RAW, get_status=True)
    assert utc_series(frame, "SINUSOID::status") == expected


def test_several_tags_share_the_interpolation_grid(client: tagreader.IMSClient, raw: RawPI) -> None:
    tags = ["SINUSOID", "U200-JI00018.PV", "Température #3/A %"]
    frame = client.read(tags, T0, T1, ts=timedelta(minutes=15), read_type=ReaderType.INT)
    assert list(frame.columns) == tags
    for tag in tags:
        items = raw.stream(
            tag, "interpolated", startTime=T0.isoformat(), endTime=T1.isoformat(), interval="15m"
        )
        assert_same(
            utc_series(frame, tag), [(ts(i["Timestamp"]), raw_value(i["Value"])) for i in items["Items"]]
        )
