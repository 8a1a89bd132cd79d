"""Values stamped exactly on hour boundaries, as PI scan classes write them.

PI's single-interval EventWeighted Count holds the events at both ends of the interval, a half-open lake window only
the start. The in-run completeness check and the late-data audit ask for EventWeightedExcludeMostRecentEvent, so a
value at a window's end raises no false `complete_vs_pi` alarm and is not lost, and a backdated insert exactly on a
boundary is repaired into its own hour, after which the audit requests nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.resources import LateDataConfig
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.landing import late_data, pi_name_filter_regex
from osipi_dagster.lib.landing.late_data import hour_key
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi import summaries as client_summaries
from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.defs.conftest import NOW, SEED, TAG_FILTER, TAGS, make_resources, read_table, us
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.quality.test_late_data import canonical, iso, pi_values, run_request, tick

HOURS = ["2024-05-01-08:00", "2024-05-01-09:00", "2024-05-01-10:00"]
H08, H09, H10, H11 = (datetime(2024, 5, 1, h, tzinfo=UTC) for h in (8, 9, 10, 11))


@pytest.fixture
def private(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(*DEFAULT_ARGS)


def catalogue(
    resources: dict[str, object],
    lake: Path,
    instance: dg.DagsterInstance | None = None,
    tags: str = TAG_FILTER,
) -> list[str]:
    """Land pi_points; the web ids of the tags the tag filter `tags` selects."""
    assert dg.materialize([pi_points], resources=resources, instance=instance).success
    points = read_table(lake, "pi_points").filter(pl.col("is_current"))
    chosen = points.filter(pl.col("name").str.contains(pi_name_filter_regex(tags)))
    return sorted(chosen["web_id"].to_list())


def completeness(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [found] = [e for e in result.get_asset_check_evaluations() if e.check_name == "complete_vs_pi"]
    return found


def count_at_end(api: str, ids: list[str], start: datetime, end: datetime) -> int:
    """How many more good values PI's plain one-interval EventWeighted Count finds than the half-open count: the
    good values stamped exactly at `end`."""
    with PIWebAPIClient(ClientConfig(base_url=api)) as pi:
        closed = pi.summary(ids, start, end, ("Count",), calculation_basis="EventWeighted")["value"].sum()
        half_open = pi.recorded_counts(ids, start, end)["count"].sum()
    return int(closed - half_open)


def test_values_on_window_ends_raise_no_alarm_and_land_once(
    private: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    resources = make_resources(private.api, lake)
    ids = catalogue(resources, lake)
    boundaries = [H08, H09, H10, H11]
    with httpx.Client(base_url=private.root, timeout=30) as admin:
        for i, web_id in enumerate(ids):
            items = [{"Timestamp": iso(t), "Value": 20.5 + i + k} for k, t in enumerate(boundaries)]
            assert admin.post(f"/admin/streams/{web_id}/replace", json=items).status_code == 200
    # The scenario holds: every tag has a good value exactly at each window's end.
    at_end = {h: count_at_end(private.api, ids, h, h + timedelta(hours=1)) for h in (H08, H09, H10)}
    assert all(n >= len(ids) for n in at_end.values()), at_end

    for key in HOURS:
        result = dg.materialize([pi_timeseries], resources=resources, partition_key=key)
        check = completeness(result)
        assert check.passed, check.metadata
        assert check.metadata["pi_count"].value == check.metadata["lake_count"].value > 0

    # Nothing lost, nothing twice: the lake is PI's half-open read of [08:00, 11:00), and each boundary value
    # landed once, in the hour it starts; 11:00 belongs to an hour not landed yet.
    landed = read_table(lake, "pi_timeseries")
    assert canonical(landed).equals(canonical(pi_values(private.api, ids, H08, H11)))
    on_bounds = landed.filter(pl.col("timestamp").is_in([H08, H09, H10, H11]) & (pl.col("ordinal") == 0))
    assert on_bounds.group_by("web_id", "timestamp").len()["len"].to_list() == [1] * (3 * len(ids))
    assert sorted(on_bounds["timestamp"].unique().to_list()) == [H08, H09, H10]
    first = {w: i for i, w in enumerate(ids)}
    for row in on_bounds.iter_rows(named=True):
        assert row["value"] == 20.5 + first[row["web_id"]] + boundaries.index(row["timestamp"])

    # What the old request did: plain EventWeighted over one interval also counts the 10:00 values → false alarm.
    monkeypatch.setattr(client_summaries, "HALF_OPEN_BASIS", "EventWeighted")
    result = dg.materialize([pi_timeseries], resources=resources, partition_key=HOURS[1])
    check = completeness(result)
    assert not check.passed
    assert check.metadata["pi_count"].value - check.metadata["lake_count"].value == at_end[H09]


def test_backdated_insert_on_an_hour_boundary_is_repaired_and_the_audit_converges(
    private: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    resources = make_resources(private.api, lake)
    with dg.instance_for_test() as instance, httpx.Client(base_url=private.root, timeout=30) as admin:
        ids = catalogue(resources, lake, instance)
        for key in HOURS:
            assert dg.materialize(
                [pi_timeseries], resources=resources, instance=instance, partition_key=key
            ).success
        first = tick(instance, resources, None)
        assert first.run_requests == [] and "3 hours audited" in (first.skip_message or "")

        # Backdated values exactly on boundaries: 10:00 (end of hour 09, start of hour 10), 08:00 (start of the
        # audited range) and 11:00 (its end: the start of an hour not landed yet, which no audited hour owns).
        tag_a, tag_b = ids[0], ids[1]
        inserts = {tag_a: [(H10, 71.5)], tag_b: [(H08, 72.5), (H11, 73.5)]}
        for web_id, values in inserts.items():
            items = [{"Timestamp": iso(t), "Value": v} for t, v in values]
            assert admin.post(f"/admin/streams/{web_id}/insert", json=items).status_code == 200

        second = tick(instance, resources, first.cursor)
        assert sorted(r.partition_key for r in second.run_requests) == [HOURS[0], HOURS[2]]
        observed = {e.partition: e.metadata for e in second.asset_events}
        for hour in (HOURS[0], HOURS[2]):
            assert "count" in observed[hour]["late_data_reasons"].value
            assert observed[hour]["pi_good_count"].value == observed[hour]["lake_good_count"].value + 1
        for request in second.run_requests:
            run_request(instance, resources, request)

        repaired = read_table(lake, "pi_timeseries")
        assert canonical(repaired).equals(canonical(pi_values(private.api, ids, H08, H11)))
        for web_id, t, v in ((tag_a, H10, 71.5), (tag_b, H08, 72.5)):
            rows = repaired.filter((pl.col("web_id") == web_id) & (pl.col("timestamp") == t))
            assert v in rows["value"].to_list()
        assert repaired.filter(pl.col("timestamp") == H11).height == 0

        third = tick(instance, resources, second.cursor)
        assert third.run_requests == [] and "no change found" in (third.skip_message or "")

        # One audited hour is one summary interval: the 11:00 value must still not count in hour 10.
        one_hour = LateDataConfig(lookback_hours=1, checksum_hours=1)
        resources = make_resources(private.api, lake, late_data=one_hour)
        fourth = tick(instance, resources, third.cursor)
        assert fourth.run_requests == [] and "1 hours audited" in (fourth.skip_message or "")
        # What the old request did: plain EventWeighted counts it, and asks for a repair that can never converge.
        monkeypatch.setattr(late_data, "HALF_OPEN_BASIS", "EventWeighted")
        old = tick(instance, resources, third.cursor)
        assert [r.partition_key for r in old.run_requests] == [HOURS[2]]


# Level tags: 36 over both data servers, 21 of them on scan classes (7 archive every scan, on whole minutes or hours;
# the others keep the scans that leave their deadband), ~1,800 values an hour.
SCAN_FILTER = "*-LI*"


def test_a_day_of_hourly_runs_over_scan_class_tags_raises_no_alarm_and_loses_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    resources = make_resources(emulator.api, lake, tag_filter=SCAN_FILTER)
    ids = catalogue(resources, lake, tags=SCAN_FILTER)
    day_start = NOW - timedelta(hours=24)
    hours = [day_start + timedelta(hours=h) for h in range(24)]
    for hour in hours:
        result = dg.materialize([pi_timeseries], resources=resources, partition_key=hour_key(hour))
        check = completeness(result)
        assert check.passed, (hour, check.metadata)
        assert check.metadata["tags_compared"].value == len(ids)

    # Every archive event of the day landed exactly once, by mock_pi's own model (not the client under test).
    config = EmulatorConfig(seed=SEED, tags=TAGS, clock=f"frozen:{NOW.isoformat()}")
    catalog = Catalog(SEED, TAGS, config.data_servers)
    archive = Archive(SEED, lambda: us(NOW))
    expected = []
    for i in range(TAGS):
        point = catalog.point_at(i)
        if point.web_id in ids:
            ts = archive.recorded(point, us(day_start), us(NOW)).ts_us
            expected += [(point.web_id, int(t)) for t in ts[ts < us(NOW)]]
    landed = read_table(lake, "pi_timeseries")
    got = landed.select("web_id", pl.col("timestamp").dt.epoch("us")).rows()
    assert sorted(got) == sorted(expected)
    # The day is full of values exactly on the hour, at the end of one run's window and the start of the next.
    on_hour = landed.filter(pl.col("timestamp").dt.truncate("1h") == pl.col("timestamp"))
    assert on_hour["timestamp"].n_unique() == 24 and on_hour["web_id"].n_unique() >= 5
