"""Scan classes and compression in mock_pi's archive (in process, exact: values are pure functions of the seed).

The catalog mirrors the shared test emulator (seed 42, 500 tags, clock frozen at 2024-05-01T12:00Z).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mock_pi.archive import Archive
from mock_pi.catalog import COMPMAX_US, SCAN_CLASSES_S, SPECIAL_POINTS, Catalog, Point
from mock_pi.pitime import parse_time

NOW = parse_time("2024-05-01T12:00:00Z", 0)
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(seed=42, tags=500)


@pytest.fixture(scope="module")
def archive() -> Archive:
    return Archive(42, lambda: NOW)


@pytest.fixture(scope="module")
def scanned(catalog: Catalog) -> list[Point]:
    return [p for p in catalog.iter_points() if p.scan_us]


def test_a_realistic_mix_of_scan_classes(catalog: Catalog, scanned: list[Point]) -> None:
    assert 0.3 * len(catalog) <= len(scanned) <= 0.4 * len(catalog)
    periods = {p.scan_us // SECOND for p in scanned}
    assert {1, 5, 60, 600, 3600} <= periods <= set(SCAN_CLASSES_S)
    assert all(3600 % s == 0 for s in SCAN_CLASSES_S)  # every class is aligned to the hour
    every_scan = [p for p in scanned if p.archive_rate == 1.0]
    compressed = [p for p in scanned if p.archive_rate < 1.0]
    assert len(every_scan) > 20 and len(compressed) > 2 * len(every_scan)
    assert all(p.deadband > 0 for p in compressed if p.is_numeric)
    assert all(p.deadband == 0 for p in every_scan)
    assert {p.point_type for p in scanned} >= {"Float32", "Float64", "Int32", "Digital"}
    for p in scanned:
        assert SCAN_CLASSES_S[p.scan_class - 1] * SECOND == p.scan_us  # location4
        assert p.point_source in ("OPC", "MODBUS", "C") and not p.duplicates
    unscanned = [p for p in catalog.iter_points() if not p.scan_us]
    assert all(p.scan_class == 0 and p.deadband == 0 for p in unscanned)
    assert all(
        not catalog.point_at(i).scan_us for i in range(len(SPECIAL_POINTS))
    )  # SINUSOID… stay irregular
    assert any(p.point_type in ("String", "Timestamp") for p in unscanned)


def test_timestamps_are_on_the_scan_grid_aligned_to_the_hour(archive: Archive, scanned: list[Point]) -> None:
    for p in scanned:
        ts = archive.recorded(p, NOW - DAY, NOW).ts_us
        assert len(ts) > 0, p.name
        assert (ts % p.scan_us == 0).all(), p.name  # epoch-aligned, hence on the hour for every class
        assert (np.diff(ts) > 0).all(), p.name  # one event per scan


def test_many_tags_have_values_exactly_on_hour_and_day_boundaries(
    archive: Archive, scanned: list[Point]
) -> None:
    on_hour = [p for p in scanned if len(archive.recorded(p, NOW - HOUR, NOW - HOUR))]
    assert len(on_hour) >= 60
    midnight = NOW - 12 * HOUR
    for p in scanned:
        # PI's compmax: a scan is archived at least every 8 h, at 00:00, 08:00 and 16:00 UTC here.
        for t in (midnight, midnight + 8 * HOUR, midnight - 8 * HOUR):
            assert archive.recorded(p, t, t).ts_us.tolist() == [t], p.name
        if p.archive_rate == 1.0:
            hours = archive.recorded(p, NOW - DAY, NOW).ts_us
            assert set(range(NOW - DAY, NOW + 1, HOUR)) <= set(hours.tolist()), p.name


def test_compression_skips_scans(archive: Archive, scanned: list[Point]) -> None:
    compressed = [p for p in scanned if p.archive_rate < 1.0 and p.scan_us <= 60 * SECOND]
    assert len(compressed) > 20
    consecutive = 0
    for p in compressed:
        ts = archive.recorded(p, NOW - DAY, NOW).ts_us
        scans = DAY // p.scan_us
        assert 0.5 * p.archive_rate < len(ts) / scans < min(1.0, 1.5 * p.archive_rate), p.name
        gaps = np.diff(ts) // p.scan_us
        assert (gaps > 1).mean() > 0.5, p.name  # most archived values skip scans
        assert len(set(gaps.tolist())) > 3, p.name  # gaps follow the signal, not a fixed pattern
        consecutive += bool((gaps == 1).any())
    assert consecutive >= 5  # where the signal moves fast, consecutive scans are archived
    every_scan = [p for p in scanned if p.archive_rate == 1.0]
    for p in every_scan:
        ts = archive.recorded(p, NOW - DAY, NOW).ts_us
        assert (np.diff(ts) == p.scan_us).all(), p.name


def test_numeric_compression_follows_the_deadband(archive: Archive, scanned: list[Point]) -> None:
    """Fast stretches of the signal keep more scans than slow ones."""
    fives = [p for p in scanned if p.is_numeric and p.archive_rate < 1.0 and p.scan_us == 5 * SECOND]
    assert len(fives) >= 3
    for p in fives:
        ts = archive.recorded(p, NOW - DAY, NOW).ts_us
        per_10min = np.bincount((ts - (NOW - DAY)) // (600 * SECOND), minlength=145)[:144]
        assert per_10min.max() > 3 * max(per_10min.min(), 1), p.name


def test_deterministic_across_catalogs_and_archives(catalog: Catalog, scanned: list[Point]) -> None:
    other = Catalog(seed=42, tags=500)
    a, b = Archive(42, lambda: NOW), Archive(42, lambda: NOW)
    for p in scanned[::7]:
        q = other.point_at(p.index)
        assert (q.scan_us, q.archive_rate, q.deadband_frac) == (p.scan_us, p.archive_rate, p.deadband_frac)
        x, y = a.recorded(p, NOW - DAY, NOW), b.recorded(q, NOW - DAY, NOW)
        assert np.array_equal(x.ts_us, y.ts_us) and np.array_equal(x.value, y.value, equal_nan=True)
        assert np.array_equal(x.digital_code, y.digital_code)
    seven = Catalog(seed=7, tags=500)
    assert [p.index for p in scanned] != [p.index for p in seven.iter_points() if p.scan_us]


def test_a_window_on_its_own_equals_the_cut_of_a_larger_one(archive: Archive, scanned: list[Point]) -> None:
    rng = np.random.default_rng(12)
    for p in scanned:
        big = archive.recorded(p, NOW - 2 * DAY, NOW)
        for _ in range(4):
            lo = int(rng.integers(NOW - 2 * DAY, NOW))
            hi = int(rng.integers(lo, NOW + 1))
            if rng.random() < 0.5:  # bounds exactly on scan instants, hours among them
                lo -= lo % p.scan_us
                hi -= hi % p.scan_us
            part = archive.recorded(p, lo, hi)
            cut = (big.ts_us >= lo) & (big.ts_us <= hi)
            assert np.array_equal(part.ts_us, big.ts_us[cut]), p.name
            assert np.array_equal(part.value, big.value[cut], equal_nan=True), p.name
            assert np.array_equal(part.digital_code, big.digital_code[cut]), p.name
        last = archive.recorded(p, NOW - 2 * DAY, NOW, limit=5, descending=True)
        assert last.ts_us.tolist() == big.ts_us[::-1][:5].tolist(), p.name
        first = archive.recorded(p, NOW - 2 * DAY, NOW, limit=5)
        assert first.ts_us.tolist() == big.ts_us[:5].tolist(), p.name
        assert archive.count(p, NOW - DAY, NOW, cap=10**7) == int((big.ts_us >= NOW - DAY).sum())


def test_snapshot_and_interpolation_on_scanned_tags(archive: Archive, scanned: list[Point]) -> None:
    for p in scanned[::5]:
        day = archive.recorded(p, NOW - DAY, NOW)
        snap = archive.snapshot(p)
        assert snap.ts_us.tolist() == [int(day.ts_us[-1])], p.name
        times = [int(t) for t in day.ts_us[::50]]
        got = archive.interpolate(p, times)
        # At an archived instant PI's interpolation returns the archived value itself.
        keep = ~day.is_system[::50]
        assert np.allclose(got.value[keep], day.value[::50][keep], equal_nan=True), p.name


def test_recorded_many_equals_per_point_recorded(catalog: Catalog, archive: Archive) -> None:
    points = list(catalog.iter_points())
    requests = [(p, NOW - 3 * HOUR + 17, NOW - HOUR, 10**6) for p in points]
    requests += [(p, NOW - DAY, NOW, 3) for p in points[::3]]  # limits cut inside the first chunk, or not
    requests += [(p, NOW - HOUR, NOW - HOUR, 10) for p in points[::5]]  # one instant, often a scan
    values, offsets = archive.recorded_many(requests)
    assert len(offsets) == len(requests) + 1
    for i, (p, start, end, limit) in enumerate(requests):
        one = archive.recorded(p, start, end, limit)
        part = values.take(slice(int(offsets[i]), int(offsets[i + 1])))
        assert np.array_equal(part.ts_us, one.ts_us), p.name
        assert np.array_equal(part.value, one.value, equal_nan=True), p.name
        assert np.array_equal(part.digital_code, one.digital_code), p.name


def test_irregular_tags_keep_the_values_they_had_before_scan_classes(
    catalog: Catalog, archive: Archive
) -> None:
    """A fingerprint of a day of every irregular tag, taken from the generator before scan classes existed."""
    digest = hashlib.sha256()
    count = 0
    for p in catalog.iter_points():
        if p.scan_us:
            continue
        v = archive.recorded(p, NOW - DAY, NOW)
        count += len(v)
        digest.update(v.ts_us.tobytes())
        # Rounded: the last bits of np.sin may differ between CPUs.
        digest.update(np.round(np.nan_to_num(v.value, nan=-1.0), 2).tobytes())
        digest.update(v.digital_code.tobytes())
    assert count == 773_441
    assert digest.hexdigest() == "831509ad43db5d9bee741d831ec65dcc5118cf1892a6e1081c76e0886e3b7ce5"


def test_compmax_boundaries_are_aligned_to_the_day() -> None:
    assert DAY % COMPMAX_US == 0 and COMPMAX_US % HOUR == 0
