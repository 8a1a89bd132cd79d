"""Discovery against a real emulator: data servers, paged points, AF hierarchy, attributes, event frames, batch.

Expected values come from mock_pi's catalog or from the server's own flat listings (searchFullHierarchy).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import (
    ATTRIBUTES_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    ELEMENTS_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    POINTS_SCHEMA,
    ClientConfig,
    NotFoundError,
    PIWebAPIClient,
)
from osipi_dagster_tests.client.expected import Expected
from osipi_dagster_tests.emulator import Emulator


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


@pytest.fixture(scope="module")
def pi(emulator: Emulator):  # type: ignore[no-untyped-def]
    with PIWebAPIClient(ClientConfig(emulator.api)) as client:
        yield client


def test_points_paged_match_the_catalog(pi: PIWebAPIClient, expected: Expected) -> None:
    server = pi.data_server("PISRV02")
    frames = list(pi.iter_points(server, page_size=60))
    assert [len(f) for f in frames] == [60, 60, 60, 60, 10]
    points = pl.concat(frames)
    assert points.schema == POINTS_SCHEMA
    want = [expected.point(i) for i in range(1, 500, 2)]
    assert points["web_id"].to_list() == [p.web_id for p in want]
    assert points["path"].to_list() == [p.path for p in want]
    row = points.filter(pl.col("name") == "CDT158").row(0, named=True)
    cdt = expected.point(1)
    assert (row["server"], row["point_type"], row["engineering_units"], row["point_id"]) == (
        "PISRV02",
        cdt.point_type,
        cdt.units,
        cdt.id,
    )
    filtered = pl.concat(list(pi.iter_points(server, name_filter="CDT*")))
    assert filtered["name"].to_list() == ["CDT158"]
    # Names with spaces, '#', '/', '%' and accents survive the round trip through the path lookup.
    odd = expected.point(2)
    assert pi.point_web_ids([odd.path, "\\\\PISRV01\\no such tag"]) == {
        odd.path: odd.web_id,
        "\\\\PISRV01\\no such tag": None,
    }


def _flat_elements(pi: PIWebAPIClient, db_web_id: str) -> list[dict]:
    return [
        e
        for page in pi.iter_collection(
            f"assetdatabases/{db_web_id}/elements", [("searchFullHierarchy", "true")]
        )
        for e in page
    ]


def test_element_hierarchy_breadth_first_with_paging(pi: PIWebAPIClient) -> None:
    db = pi.asset_databases(pi.asset_servers()[0])[0]
    frames = list(pi.iter_elements(db, page_size=25))  # small pages force startIndex paging inside batches
    elements = pl.concat(frames)
    assert elements.schema == ELEMENTS_SCHEMA
    flat = _flat_elements(pi, db.web_id)
    assert sorted(elements["web_id"].to_list()) == sorted(e["WebId"] for e in flat)
    assert elements["depth"].to_list() == sorted(elements["depth"].to_list())  # breadth-first
    by_id = {r["web_id"]: r for r in elements.iter_rows(named=True)}
    for r in by_id.values():
        if r["depth"] == 0:
            assert r["parent_web_id"] is None
        else:
            parent = by_id[r["parent_web_id"]]
            assert parent["depth"] == r["depth"] - 1
            assert r["path"] == parent["path"] + "\\" + r["name"]
    assert elements["depth"].max() >= 4
    same = pl.concat(list(pi.iter_elements(db)))
    assert sorted(same.rows()) == sorted(elements.rows())


def test_attributes_resolve_pi_points(pi: PIWebAPIClient, expected: Expected) -> None:
    db = pi.asset_databases(pi.asset_servers()[0])[0]
    elements = pl.concat(list(pi.iter_elements(db)))
    attrs = pl.concat(list(pi.iter_attributes(elements["web_id"].to_list()[:80], chunk=30)))
    assert attrs.schema == ATTRIBUTES_SCHEMA
    pi_point = attrs.filter(pl.col("data_reference") == "PI Point")
    assert len(pi_point) > 10
    for row in pi_point.iter_rows(named=True):
        point = expected.catalog.point_by_path(row["point_path"])
        assert point is not None and row["point_web_id"] == point.web_id
        assert row["config_string"].startswith(row["point_path"])
    static = attrs.filter(pl.col("data_reference").is_null())
    assert static["static_value"].null_count() < len(static)


def test_event_frames_in_window_with_children_and_captured_values(pi: PIWebAPIClient) -> None:
    db = pi.asset_databases(pi.asset_servers()[0])[0]
    start, end = datetime(2024, 4, 30, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)
    frames = pl.concat(list(pi.iter_event_frames(db, start, end, page_size=20)))
    assert frames.schema == EVENT_FRAMES_SCHEMA
    top = [
        f
        for page in pi.iter_collection(
            f"assetdatabases/{db.web_id}/eventframes",
            [("startTime", "2024-04-30T00:00:00Z"), ("endTime", "2024-05-01T12:00:00Z")],
        )
        for f in page
    ]
    roots = frames.filter(pl.col("depth") == 0)
    assert sorted(roots["web_id"].to_list()) == sorted(f["WebId"] for f in top)
    children = frames.filter(pl.col("depth") > 0)
    assert len(children) > 0 and children["parent_web_id"].is_in(frames["web_id"].implode()).all()
    open_frames = frames.filter(pl.col("in_progress"))
    assert len(open_frames) > 0 and open_frames["end"].null_count() == len(open_frames)
    closed = frames.filter(~pl.col("in_progress"))
    assert (closed["end"] >= closed["start"]).all()
    assert (roots["end"].fill_null(end) >= start).all() and (roots["start"] <= end).all()  # overlapped

    values = pl.concat(list(pi.iter_event_frame_attributes(closed["web_id"].to_list()[:10])))
    assert values.schema == EF_ATTRIBUTES_SCHEMA
    captured = values.filter(pl.col("data_reference") == "PI Point")
    assert len(captured) > 0 and captured["timestamp"].null_count() == 0
    ends = dict(closed.select("web_id", "end").iter_rows())
    for row in captured.iter_rows(named=True):
        assert row["timestamp"] <= ends[row["event_frame_web_id"]]


def test_batch_partial_failure_keeps_the_good_items(pi: PIWebAPIClient, expected: Expected) -> None:
    good = expected.point(0)
    urls = {
        "good": pi.url(f"points/{good.web_id}"),
        "bad": pi.url("points/F1DPdoesnotexist"),
    }
    contents, errors = pi.batch_get(urls, raise_errors=False)
    assert contents["good"]["Name"] == "SINUSOID"
    assert set(errors) == {"bad"}
    assert isinstance(errors["bad"], NotFoundError)
    assert str(errors["bad"]).startswith(
        "PI Web API returned 404 for GET /points/F1DPdoesnotexist (in POST /batch)"
    )
    with pytest.raises(NotFoundError):
        pi.batch_get(urls)
