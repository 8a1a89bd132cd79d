"""kukur's `piwebapi-da` source (Timeseer.AI) against mock_pi, through the Kukur application, compared with raw reads.

Its three operations: search (every point of the data archive with its metadata, paged by startIndex), metadata of
one series (points?nameFilter=) and data (recorded values, paged by maxCount, system states dropped, Good as quality).
Configured as its docs allow for Basic: `username` and `password` in the source (no Kerberos).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kukur import Metadata, SeriesSearch, SeriesSelector
from kukur.app import Kukur
from kukur.exceptions import InvalidDataError
from kukur.metadata import fields

from osipi_dagster_tests.thirdparty.raw import PASSWORD, USERNAME, RawPI, ts

PAGE = 40  # max_returned_items_per_call: small, so search and data both page
T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 11, tzinfo=UTC)
# kukur's documented PI point type → Kukur data type; other point types (Timestamp, Int8, Blob…) are not listed.
DATA_TYPES = {
    "Digital": "DICTIONARY",
    "Float16": "FLOAT32",
    "Float32": "FLOAT32",
    "Float64": "FLOAT64",
    "Int16": "FLOAT32",
    "Int32": "FLOAT64",
    "String": "STRING",
}


@pytest.fixture
def kukur(raw: RawPI, tmp_path: Path) -> Kukur:
    source = {
        "type": "piwebapi-da",
        "data_archive_uri": raw.server()["Links"]["Self"],
        "username": USERNAME,
        "password": PASSWORD,
        "max_returned_items_per_call": PAGE,
    }
    return Kukur({"data_dir": str(tmp_path), "source": {"pi": source}})


def dictionaries(raw: RawPI) -> dict[str, dict[int, str]]:
    """Every enumeration set of the data server: name → {code: state name}."""
    sets = raw.get(raw.server()["Links"]["EnumerationSets"])["Items"]
    return {s["Name"]: {v["Value"]: v["Name"] for v in raw.get(s["Links"]["Values"])["Items"]} for s in sets}


def expected_metadata(point: dict[str, Any], sets: dict[str, dict[int, str]]) -> dict[str, Any]:
    """What kukur's metadata should say about a raw PI point, in Metadata.to_data() terms."""
    digital = point["DigitalSetName"]
    return {
        "description": point["Descriptor"],
        "unit": point["EngineeringUnits"],
        "limitLowFunctional": point["Zero"],
        "limitHighFunctional": point["Zero"] + point["Span"],
        "interpolationType": "STEPPED" if point["Step"] else "LINEAR",
        "dataType": DATA_TYPES[point["PointType"]],
        "dictionaryName": digital or None,
        "dictionary": sets[digital] if digital else None,
    }


def actual_metadata(metadata: Metadata) -> dict[str, Any]:
    """Metadata.to_data() without the series, the dictionary as {code: state name}."""
    data = {key: value for key, value in metadata.to_data().items() if key != "series"}
    dictionary = metadata.get_field(fields.Dictionary)
    return {**data, "dictionary": dict(dictionary.mapping) if dictionary is not None else None}


def test_search_lists_every_supported_point_with_its_metadata(kukur: Kukur, raw: RawPI) -> None:
    points = raw.points()
    sets = dictionaries(raw)
    assert len(points) > 2 * PAGE
    expected = {p["Name"]: expected_metadata(p, sets) for p in points if p["PointType"] in DATA_TYPES}
    found = list(kukur.search(SeriesSearch("pi")))
    assert all(isinstance(m, Metadata) for m in found)
    assert [m.series.tags["series name"] for m in found] == [
        p["Name"] for p in points if p["Name"] in expected
    ]
    by_name = {m.series.tags["series name"]: actual_metadata(m) for m in found}
    for name, metadata in expected.items():
        assert {k: by_name[name][k] for k in metadata} == metadata, name
    assert any(m["dataType"] == "DICTIONARY" for m in expected.values())
    assert {p["PointType"] for p in points} - set(DATA_TYPES), "a point type kukur skips should exist"


@pytest.mark.parametrize(
    "name",
    ["SINUSOID", "Température #3/A %", "Tank 12 (North) Level", "Reactor R-101 Mode", "U250-CNT00078.CNT"],
)
def test_metadata_of_one_series(kukur: Kukur, raw: RawPI, name: str) -> None:
    metadata = kukur.get_metadata(SeriesSelector("pi", name))
    assert actual_metadata(metadata) == {
        **{k: None for k in metadata.to_data() if k != "series"},
        **expected_metadata(raw.point(name), dictionaries(raw)),
    }


def test_metadata_of_an_unknown_series_is_an_error(kukur: Kukur) -> None:
    with pytest.raises(InvalidDataError, match="Series not found"):
        kukur.get_metadata(SeriesSelector("pi", "NO-SUCH-TAG"))


def rows(table: pa.Table) -> list[tuple[datetime, Any, int]]:
    data = table.to_pydict()
    return [
        (t.astimezone(UTC), v, q) for t, v, q in zip(data["ts"], data["value"], data["quality"], strict=True)
    ]


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("SINUSOID", T0 - timedelta(hours=2), T1),
        # questionable values and an I/O Timeout system state
        ("SINUSOID", T0 - timedelta(hours=9), T0 - timedelta(hours=7)),
        # sub-second timestamps, Shutdown and Under Range states
        ("Flow Line 2/B #7 %", T0 - timedelta(hours=10), T0 - timedelta(hours=8)),
        ("Reactor R-101 Mode", T0 - timedelta(hours=10), T1),
        ("TANKFARM-MODE00172.MODE", T0 - timedelta(hours=10), T1),
    ],
)
def test_data_equals_recorded_values(
    kukur: Kukur, raw: RawPI, name: str, start: datetime, end: datetime
) -> None:
    items = raw.stream(name, "recorded", startTime=start.isoformat(), endTime=end.isoformat())["Items"]
    kept = [i for i in items if not (isinstance(i["Value"], dict) and i["Value"]["IsSystem"])]
    expected = [
        (
            ts(i["Timestamp"]),
            i["Value"]["Value"] if isinstance(i["Value"], dict) else i["Value"],
            int(i["Good"]),
        )
        for i in kept
    ]
    assert expected
    got = rows(kukur.get_data(SeriesSelector("pi", name), start, end))
    assert got == expected


def test_data_pages_across_maxcount(kukur: Kukur, raw: RawPI) -> None:
    """More values than one call returns: kukur restarts at the last timestamp and keeps each value once."""
    start = T0 - timedelta(hours=4)
    items = raw.stream("SINUSOID", "recorded", startTime=start.isoformat(), endTime=T1.isoformat())["Items"]
    assert len(items) > 3 * PAGE
    got = rows(kukur.get_data(SeriesSelector("pi", "SINUSOID"), start, T1))
    assert [t for t, _, _ in got] == [ts(i["Timestamp"]) for i in items if not isinstance(i["Value"], dict)]
    assert len({t for t, _, _ in got}) == len(got)
