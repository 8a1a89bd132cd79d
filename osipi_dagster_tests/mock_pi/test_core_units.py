"""In-process tests of the emulator core's pure parts: PI time parsing, clock, deterministic archive, edits, JSONPath.

Everything here is exact: values are pure functions of (seed, point, time).
"""

from __future__ import annotations

import numpy as np
import pytest

from mock_pi.archive import Archive, Event
from mock_pi.catalog import HIGH_DENSITY_EVERY, Catalog
from mock_pi.clock import Clock
from mock_pi.pitime import format_us, parse_interval, parse_time
from mock_pi.routes.batch import JSONPathError, jsonpath

NOW = parse_time("2024-05-01T12:00:00Z", 0)
HOUR = 3_600_000_000
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", "2024-05-01T12:00:00Z"),
        ("", "2024-05-01T12:00:00Z"),
        ("*-1d", "2024-04-30T12:00:00Z"),
        ("*+1h", "2024-05-01T13:00:00Z"),
        ("-1.5d", "2024-04-30T00:00:00Z"),
        ("t", "2024-05-01T00:00:00Z"),
        ("Today", "2024-05-01T00:00:00Z"),
        ("y", "2024-04-30T00:00:00Z"),
        ("yesterday", "2024-04-30T00:00:00Z"),
        ("y+8h", "2024-04-30T08:00:00Z"),
        ("t-3h", "2024-04-30T21:00:00Z"),
        ("2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z"),
        ("2024-05-01T02:30:00+02:00", "2024-05-01T00:30:00Z"),
        ("2024-05-01 03:00:00", "2024-05-01T03:00:00Z"),
        ("2024-05-01T00:00:00.1234567Z", "2024-05-01T00:00:00.123456Z"),
        ("'2024-05-01T00:00:00Z'", "2024-05-01T00:00:00Z"),
        ("Monday", "2024-04-29T00:00:00Z"),
        ("*-1mo", "2024-04-01T12:00:00Z"),
        # .NET forms: PI's own (tagreader sends it), and en-US with AM/PM.
        ("01-May-24 10:00:00", "2024-05-01T10:00:00Z"),
        ("1-may-2024", "2024-05-01T00:00:00Z"),
        ("30-Apr-99 23:59:59.25", "1999-04-30T23:59:59.25Z"),
        ("5/1/2024 10:30:00 PM", "2024-05-01T22:30:00Z"),
        ("5/1/2024 12:00 AM", "2024-05-01T00:00:00Z"),
        ("01-May-24 10:00:00-1h", "2024-05-01T09:00:00Z"),
    ],
)
def test_parse_time(text: str, expected: str) -> None:
    assert format_us(parse_time(text, NOW)) == expected


def test_parse_time_zone_for_naive_strings() -> None:
    assert format_us(parse_time("2024-05-01T12:00:00", NOW, tz="Europe/Paris")) == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    "bad", ["garbage", "*-1x", "2024-13-01", "*-", "tomorrow+", "31-Feb-24", "01-Foo-24", "5/1/2024 13:00 PM"]
)
def test_parse_time_rejects_bad_strings_naming_them(bad: str) -> None:
    with pytest.raises(ValueError, match="Cannot parse time string"):
        parse_time(bad, NOW)


def test_parse_interval() -> None:
    assert parse_interval("1h") == HOUR
    assert parse_interval("30m") == 30 * 60_000_000
    assert parse_interval("1d") == DAY
    assert parse_interval("500ms") == 500_000
    assert parse_interval("1.5h") == 5_400_000_000
    assert parse_interval("00:30:00") == 1_800_000_000
    with pytest.raises(ValueError):
        parse_interval("1 fortnight")


def test_clock_frozen_offset_rate_and_advance() -> None:
    clock = Clock("frozen:2024-05-01T12:00:00Z")
    assert clock.now_us() == NOW
    clock.advance(HOUR)
    assert clock.now_us() == NOW + HOUR
    assert clock.describe() == {"Mode": "frozen", "Now": "2024-05-01T13:00:00Z", "Rate": 1.0}
    clock.offset(NOW, rate=1000.0)
    first = clock.now_us()
    assert NOW <= first < NOW + 60_000_000
    assert clock.state().mode == "offset"
    clock.freeze()
    frozen = clock.now_us()
    assert clock.now_us() == frozen
    with pytest.raises(ValueError):
        Clock("sometimes")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(seed=42, tags=500, data_servers=2)


def test_catalog_is_deterministic_and_webids_round_trip(catalog: Catalog) -> None:
    again = Catalog(seed=42, tags=500, data_servers=2)
    for i in (0, 2, 5, 123, 499):
        p = catalog.point_at(i)
        assert again.point_at(i).web_id == p.web_id
        assert catalog.point(p.web_id) is p
        assert catalog.point(catalog.point_web_id(p, "IDOnly")) is p
        assert catalog.point(catalog.point_web_id(p, "PathOnly")) is p
        assert catalog.point_by_path(p.path.lower()) is p
    assert Catalog(seed=7, tags=500).point_at(123).name != catalog.point_at(123).name or (
        Catalog(seed=7, tags=500).point_at(123).web_id != catalog.point_at(123).web_id
    )
    types = {catalog.point_at(i).point_type for i in range(500)}
    assert types == {"Float32", "Float64", "Int16", "Int32", "Digital", "String", "Timestamp"}
    assert catalog.point_at(2).name == "Température #3/A %"
    assert catalog.point(catalog.point_at(2).web_id[:-3] + "xyz") is catalog.point_at(2)  # ids win over path
    assert catalog.point("F1DPnotreal") is None


def test_values_are_irregular_deterministic_and_windows_agree(catalog: Catalog) -> None:
    archive = Archive(42, lambda: NOW)
    # A numeric tag not on a scan class (those are on a grid: test_scan_classes.py).
    p = next(pt for pt in catalog.iter_points() if pt.index >= 10 and pt.is_numeric and not pt.scan_us)
    day = archive.recorded(p, NOW - DAY, NOW)
    gaps = np.diff(day.ts_us)
    assert len(set(gaps.tolist())) > 10  # not on a shared grid
    left = archive.recorded(p, NOW - DAY, NOW - DAY // 3)
    right = archive.recorded(p, NOW - DAY // 2, NOW)
    overlap = (day.ts_us >= NOW - DAY // 2) & (day.ts_us <= NOW - DAY // 3)
    lo = left.ts_us >= NOW - DAY // 2
    hi = right.ts_us <= NOW - DAY // 3
    assert np.array_equal(day.ts_us[overlap], left.ts_us[lo])
    assert np.array_equal(day.ts_us[overlap], right.ts_us[hi])
    assert np.array_equal(day.value[overlap], right.value[hi], equal_nan=True)
    other = Archive(42, lambda: NOW).recorded(p, NOW - DAY, NOW)
    assert np.array_equal(other.ts_us, day.ts_us) and np.array_equal(other.value, day.value, equal_nan=True)


def test_no_future_data_and_nothing_before_creation(catalog: Catalog) -> None:
    archive = Archive(42, lambda: NOW)
    p = catalog.point_at(0)
    assert archive.recorded(p, NOW - HOUR, NOW + DAY).ts_us.max() <= NOW
    first = archive.recorded(p, 0, NOW, limit=1)
    assert format_us(int(first.ts_us[0])) == "2020-01-01T00:00:00Z"
    assert first.is_system[0] and first.digital_code[0] == 253 and not first.good[0]


def test_high_density_tag_and_duplicates(catalog: Catalog) -> None:
    archive = Archive(42, lambda: NOW)
    dense = catalog.point_at(5)
    assert 5 % HIGH_DENSITY_EVERY == 5
    assert archive.count(dense, NOW - DAY, NOW, cap=10**6) > 150_000
    dup_points = 0
    for i in range(10, 60):
        v = archive.recorded(catalog.point_at(i), NOW - 7 * DAY, NOW)
        if (np.diff(v.ts_us) == 0).any():
            dup_points += 1
    assert 0 < dup_points < 50  # duplicates exist on some tags, not all


def test_edit_overlay_insert_replace_delete(catalog: Catalog) -> None:
    archive = Archive(42, lambda: NOW)
    p = catalog.point_at(10)
    before = archive.recorded(p, NOW - DAY, NOW)
    t0 = int(before.ts_us[5])
    late = NOW - DAY + 123_000_000
    archive.insert(p, late, Event(value=12.5))
    archive.replace(p, t0, Event(value=-1.0, questionable=True))
    t1 = int(before.ts_us[9])
    archive.delete(p, t1)
    after = archive.recorded(p, NOW - DAY, NOW)
    assert len(after) == len(before) + 1 - int((before.ts_us == t1).sum())
    assert after.value[after.ts_us == late].tolist() == [12.5]
    assert after.value[after.ts_us == t0][0] == -1.0 and after.questionable[after.ts_us == t0][0]
    assert t1 not in after.ts_us
    # an insert at an existing timestamp keeps both events, the new one after the old
    archive.insert(p, t0, Event(value=7.0))
    assert archive.recorded(p, t0, t0).value.tolist() == [-1.0, 7.0]


def test_descending_and_limit(catalog: Catalog) -> None:
    archive = Archive(42, lambda: NOW)
    p = catalog.point_at(5)
    asc = archive.recorded(p, NOW - HOUR, NOW)
    desc = archive.recorded(p, NOW - HOUR, NOW, limit=10, descending=True)
    assert desc.ts_us.tolist() == asc.ts_us[::-1][:10].tolist()


def test_jsonpath() -> None:
    root = {"1": {"Content": {"Items": [{"WebId": "a"}, {"WebId": "b"}], "Links": {"Self": "u"}}}}
    assert jsonpath(root, "$.1.Content.Items[*].WebId") == ["a", "b"]
    assert jsonpath(root, "$.1.Content.Items[1].WebId") == ["b"]
    assert jsonpath(root, "$['1'].Content.Links.Self") == ["u"]
    assert jsonpath(root, "$.1.Content.links.self") == ["u"]
    assert jsonpath(root, "$.2.Content") == []
    with pytest.raises(JSONPathError):
        jsonpath(root, "1.Content")
