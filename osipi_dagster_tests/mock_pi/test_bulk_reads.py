"""Reads of many streams in one pass (Archive.recorded_many + timed_values_texts) equal one read per stream."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mock_pi.archive import Archive, Event, Values
from mock_pi.catalog import Catalog
from mock_pi.pitime import parse_time
from mock_pi.process import Emulator
from mock_pi.serialize import VALUE_FIELDS, timed_value_fragments, timed_values_texts

NOW = parse_time("2024-05-01T12:00:00Z", 0)
CATALOG = Catalog(seed=7, tags=600, data_servers=2)
POINTS = [CATALOG.point_at(i) for i in range(len(CATALOG))]
ARRAYS = [f.name for f in dataclasses.fields(Values) if f.name != "text"]
FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated")


def t(text: str) -> int:
    return parse_time(text, 0)


def same(a: Values, b: Values) -> bool:
    if len(a) != len(b):
        return False
    texts = [(x.text.tolist() if x.text is not None else [None] * len(x)) for x in (a, b)]
    return texts[0] == texts[1] and all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=(f == "value")) for f in ARRAYS
    )


@pytest.fixture
def archive() -> Archive:
    return Archive(seed=7, now_us=lambda: NOW)


WINDOWS = [
    ("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", 1_700),  # an hour, per-stream share of a stream-set call
    ("2024-04-30T00:00:00Z", "2024-05-01T00:00:00Z", 100),  # a day cut short by maxCount (continuations)
    ("2024-04-30T00:00:00Z", "2024-05-01T00:00:00Z", 150_000),  # long reads take their own pass
    ("2019-12-31T00:00:00Z", "2020-01-01T06:00:00Z", 50),  # from before creation: the "Pt Created" event
    ("2024-05-01T11:59:00Z", "2024-05-02T00:00:00Z", 5),  # past `now`
]


@pytest.mark.parametrize(("start", "end", "limit"), WINDOWS)
def test_recorded_many_equals_one_read_per_stream(archive: Archive, start: str, end: str, limit: int) -> None:
    # Edits on a few streams send them down the one-stream path; the result must still be in request order.
    archive.insert(POINTS[3], t("2024-05-01T10:30:00Z"), Event(value=1.5))
    day = archive.recorded(POINTS[40], t("2024-04-30T00:00:00Z"), t("2024-05-01T00:00:00Z"), limit=1)
    archive.delete(POINTS[40], int(day.ts_us[0]))
    values, offsets = archive.recorded_many([(p, t(start), t(end), limit) for p in POINTS])
    assert len(offsets) == len(POINTS) + 1 and offsets[-1] == len(values)
    kinds = set()
    for i, p in enumerate(POINTS):
        expected = archive.recorded(p, t(start), t(end), limit=limit)
        assert same(values.take(slice(offsets[i], offsets[i + 1])), expected), (i, p.name, p.point_type)
        if len(expected):
            kinds.add(p.point_type)
    assert len(values) > 0
    if limit < 150_000:
        assert {"Float32", "Int32", "Digital"} <= kinds


def test_recorded_many_stops_after_the_call_limit(archive: Archive) -> None:
    reads = [(p, t("2024-04-01T00:00:00Z"), t("2024-05-01T00:00:00Z"), 150_001) for p in POINTS]
    values, offsets = archive.recorded_many(reads, stop_after=150_000)
    assert len(values) > 150_000
    assert len(offsets) - 1 < len(POINTS)  # did not read every stream once the limit was passed


@pytest.mark.parametrize(
    "fields", [VALUE_FIELDS, FIELDS, ("Value",), ("Timestamp",), ("UnitsAbbreviation", "Good"), ()]
)
def test_serialising_many_streams_equals_one_text_per_stream(
    archive: Archive, fields: tuple[str, ...]
) -> None:
    values, offsets = archive.recorded_many(
        [(p, t("2024-05-01T08:00:00Z"), t("2024-05-01T11:00:00Z"), 2_000) for p in POINTS]
    )
    texts = timed_values_texts(values, offsets, POINTS, [p.units for p in POINTS], fields)
    for i, p in enumerate(POINTS):
        part = values.take(slice(offsets[i], offsets[i + 1]))
        # The reference is the per-value builder (timed_values_text itself goes column-wise for long streams).
        assert texts[i] == "[" + ",".join(timed_value_fragments(part, p, fields, p.units)) + "]", (i, p.name)
    if "Value" in fields:
        assert any('"IsSystem":true' in x for x in texts) and any('"IsSystem":false' in x for x in texts)


def test_stream_set_count_summary_equals_per_stream_summaries(emulator: Emulator) -> None:
    """summaryType=Count over many streams (the completeness check's call) takes the one-pass path; each item
    must equal GET /streams/{id}/summary for that stream."""
    import httpx

    with httpx.Client(base_url=emulator.api, timeout=60) as http:
        server = http.get("/dataservers").json()["Items"][0]["WebId"]
        ids = [
            i["WebId"]
            for i in http.get(f"/dataservers/{server}/points", params={"maxCount": 120}).json()["Items"]
        ]
        window = {"startTime": "2024-05-01T09:00:00Z", "endTime": "2024-05-01T11:00:00Z", "summaryType": "Count",
                  "calculationBasis": "EventWeighted"}  # fmt: skip
        together = http.get("/streamsets/summary", params=[("webId", w) for w in ids] + list(window.items()))
        assert together.status_code == 200
        items = together.json()["Items"]
        assert [i["WebId"] for i in items] == ids
        counts = []
        for web_id, item in zip(ids, items, strict=True):
            alone = http.get(f"/streams/{web_id}/summary", params=window).json()["Items"]
            assert item["Items"] == alone
            counts.append(alone[0]["Value"]["Value"])
        assert sum(counts) > 1_000 and len(set(counts)) > 10
