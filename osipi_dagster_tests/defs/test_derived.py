"""Derived reads (interpolated values, summaries per interval) against a private emulator: each landed table equals
what PI answers over the same windows (raw httpx reads), boundary values included; reruns, ranges and repairs.

One tag's 05:00–10:00 archive is replaced by 1, 2, 4, … 64 every half hour from 06:00 to 09:00 (on interval
boundaries), so a Total names exactly which boundary values an interval holds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest

from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.derived import (
    build_derived_assets,
    build_derived_defs,
    derived_reads,
    derived_settings_from_env,
)
from osipi_dagster.defs.pi.names import REPAIR_TAG
from osipi_dagster.lib.landing.derived import SUMMARIES_SCHEMA
from osipi_dagster.lib.settings import DerivedSettings, SettingsError
from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.defs.conftest import make_resources, read_table
from osipi_dagster_tests.emulator import Emulator, start_emulator
from osipi_dagster_tests.mock_pi.test_summary_boundaries import VALUES, at, iso, write_clean_window

TYPES = ["Average", "Minimum", "Maximum", "Total", "Count", "PercentGood"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(*DEFAULT_ARGS, log_dir=tmp_path_factory.mktemp("derived")) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.api, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def base_lake(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("derived_lake") / "lake"
    assert dg.materialize([pi_points], resources=make_resources(emu.api, lake)).success
    return lake


@pytest.fixture(scope="module")
def points(base_lake: Path) -> pl.DataFrame:
    rows = read_table(base_lake, "pi_points").filter(pl.col("is_current"))
    return rows.filter(pl.col("name").str.contains(r"^U1.*-TI.*$")).sort("web_id")


@pytest.fixture(scope="module")
def clean_tag(emu: Emulator, http: httpx.Client, points: pl.DataFrame) -> str:
    """A linear numeric tag of the filter whose 05:00–10:00 archive is VALUES."""
    web_id = points.filter(~pl.col("step") & pl.col("point_type").str.starts_with("Float"))["web_id"][0]
    write_clean_window(emu.root, http, web_id, VALUES)
    return web_id


@pytest.fixture
def lake(base_lake: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(base_lake, target)
    return target


def assets(**settings: Any) -> list[dg.AssetsDefinition]:
    return build_derived_assets(DerivedSettings(**settings))


def run(
    emu: Emulator, lake: Path, defs: list[dg.AssetsDefinition], first: str, last: str | None = None, **tags
):
    """Materialize one hour (or the range first..last in one run, as a backfill does)."""
    if last is None:
        return dg.materialize(defs, resources=make_resources(emu.api, lake), partition_key=first, tags=tags)
    range_tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(defs, resources=make_resources(emu.api, lake), tags={**range_tags, **tags})


def raw_interpolated(http: httpx.Client, ids: list[str], start: datetime, end: datetime, interval: str):
    params = [("webId", w) for w in ids] + [
        ("startTime", iso(start)),
        ("endTime", iso(end)),
        ("interval", interval),
    ]
    body = http.get("/streamsets/interpolated", params=params).raise_for_status().json()
    rows = [
        (s["WebId"], datetime.fromisoformat(v["Timestamp"].replace("Z", "+00:00")), v["Value"])
        for s in body["Items"]
        for v in s["Items"]
    ]
    return pl.DataFrame(
        rows,
        schema={"web_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64},
        orient="row",
    )


def raw_summaries(
    http: httpx.Client, ids: list[str], start: datetime, end: datetime, duration: str, basis: str
):
    """PI's answer for one call over the whole range: (web_id, type, n-th interval, value, good)."""
    params = [("webId", w) for w in ids] + [
        ("startTime", iso(start)),
        ("endTime", iso(end)),
        ("summaryDuration", duration),
        ("calculationBasis", basis),
    ]
    params += [("summaryType", t) for t in TYPES]
    body = http.get("/streamsets/summary", params=params).raise_for_status().json()
    rows, seen = [], {}
    for s in body["Items"]:
        for item in s["Items"]:
            key = (s["WebId"], item["Type"])
            seen[key] = seen.get(key, -1) + 1
            value = item["Value"]["Value"]
            number = float(value) if isinstance(value, (int, float)) else None
            rows.append((*key, seen[key], number, bool(item["Value"].get("Good", True))))
    schema = {
        "web_id": pl.Utf8,
        "summary_type": pl.Utf8,
        "i": pl.Int64,
        "value": pl.Float64,
        "good": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort("web_id", "summary_type", "i")


def landed_summaries(lake: Path, start: datetime, step: timedelta) -> pl.DataFrame:
    table = read_table(lake, "summary_values")
    i = (pl.col("interval_start") - pl.lit(start)).dt.total_microseconds() // int(step.total_seconds() * 1e6)
    return table.select("web_id", "summary_type", i.alias("i"), "value", "good").sort(
        "web_id", "summary_type", "i"
    )


def test_off_unless_enabled_and_keys_follow_the_prefix() -> None:
    assert build_derived_assets(DerivedSettings()) == []
    assert build_derived_defs(DerivedSettings()).assets is None
    on = build_derived_defs(DerivedSettings(summary_interval="1h"), key_prefix="site_b", name_prefix="site_b")
    assert [s.name for s in on.schedules or []] == ["site_b_derived_hourly_schedule"]
    assert [s.name for s in on.sensors or []] == ["site_b_derived_late_data_sensor"]
    assert derived_reads(derived_settings_from_env({})) == []
    env = {"OSIPI_DERIVED_INTERPOLATED_INTERVAL": "1m", "OSIPI_DERIVED_SUMMARY_INTERVAL": "15m"}
    keys = [a.key.to_user_string() for a in build_derived_assets(derived_settings_from_env(env))]
    assert keys == ["pi/interpolated_values", "pi/summary_values"]
    other = build_derived_assets(
        DerivedSettings(summary_interval="1h"), key_prefix="site_b", pi_resource_key="pi_b"
    )
    assert [a.key.to_user_string() for a in other] == ["site_b/summary_values"]
    assert other[0].required_resource_keys >= {"pi_b", "lake"}
    with pytest.raises(SettingsError, match="OSIPI_DERIVED_SUMMARY_INTERVAL='7m' does not divide an hour"):
        derived_settings_from_env({"OSIPI_DERIVED_SUMMARY_INTERVAL": "7m"})


def test_interpolated_equals_pi_with_boundary_values(
    emu: Emulator, http: httpx.Client, lake: Path, points: pl.DataFrame, clean_tag: str
) -> None:
    result = run(emu, lake, assets(interpolated_interval="10m"), "2024-05-01-06:00", "2024-05-01-07:00")
    assert result.success
    table = read_table(lake, "interpolated_values").sort("web_id", "timestamp")
    ids = points["web_id"].to_list()
    # One call over the two hours, its last interval start inclusive: what PI answers for the same window.
    expected = raw_interpolated(http, ids, at(6), at(7, 50), "10m").sort("web_id", "timestamp")
    assert table.height == expected.height == len(ids) * 12
    assert table.select("web_id", "timestamp", "value").equals(expected)
    clean = table.filter(pl.col("web_id") == clean_tag)
    # Values written exactly on boundaries; 08:00 (16) is the next hour's first value, not this range's.
    assert clean.filter(pl.col("timestamp") == at(7))["value"].item() == 4.0
    assert clean.filter(pl.col("timestamp") == at(6, 30))["value"].item() == 2.0
    assert clean["timestamp"].max() == at(7, 50)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"complete": True, "good_share": True}


@pytest.mark.parametrize("basis", ["EventWeighted", "TimeWeighted"])
def test_summaries_equal_one_pi_call_over_the_range(
    emu: Emulator, http: httpx.Client, lake: Path, points: pl.DataFrame, clean_tag: str, basis: str
) -> None:
    defs = assets(summary_interval="30m", summary_types=TYPES, calculation_basis=basis)
    assert run(emu, lake, defs, "2024-05-01-06:00", "2024-05-01-08:00").success
    landed = landed_summaries(lake, at(6), timedelta(minutes=30))
    expected = raw_summaries(http, points["web_id"].to_list(), at(6), at(9), "30m", basis)
    assert landed.height == expected.height == points.height * 6 * len(TYPES)
    assert landed.equals(expected)
    table = read_table(lake, "summary_values")
    assert table.columns == list(SUMMARIES_SCHEMA)
    clean = table.filter(pl.col("web_id") == clean_tag).sort("interval_start")
    totals = clean.filter(pl.col("summary_type") == "Total")
    if basis == "EventWeighted":
        # Several ascending intervals: each holds the value on its start only; 09:00 (64) belongs to no interval.
        assert totals["value"].to_list() == [1, 2, 4, 8, 16, 32]
        assert clean.filter(pl.col("summary_type") == "Count")["value"].to_list() == [1] * 6
    mins = clean.filter(pl.col("summary_type") == "Minimum")
    assert mins["interval_start"].to_list() == [at(6) + timedelta(minutes=30 * k) for k in range(6)]
    assert (mins["interval_end"] - mins["interval_start"]).unique().to_list() == [timedelta(minutes=30)]


def test_one_hour_event_weighted_holds_its_start_only(
    emu: Emulator, http: httpx.Client, lake: Path, points: pl.DataFrame, clean_tag: str
) -> None:
    """A 1h interval is one interval per partition: asked half-open, so it equals PI's several-hours answer."""
    defs = assets(summary_interval="1h", summary_types=TYPES, calculation_basis="EventWeighted")
    for key in ("2024-05-01-06:00", "2024-05-01-07:00", "2024-05-01-08:00"):
        assert run(emu, lake, defs, key).success
    landed = landed_summaries(lake, at(6), timedelta(hours=1))
    assert landed.equals(raw_summaries(http, points["web_id"].to_list(), at(6), at(9), "1h", "EventWeighted"))
    clean = landed.filter((pl.col("web_id") == clean_tag) & (pl.col("summary_type") == "Total"))
    assert clean["value"].to_list() == [3, 12, 48]


def test_reruns_leave_one_copy(emu: Emulator, lake: Path, clean_tag: str) -> None:
    defs = assets(interpolated_interval="1m", summary_interval="15m")
    run(emu, lake, defs, "2024-05-01-07:00")
    run(emu, lake, defs, "2024-05-01-08:00")
    first = {t: read_table(lake, t).drop("ingested_at") for t in ("interpolated_values", "summary_values")}
    run(emu, lake, defs, "2024-05-01-07:00")
    for table, keys in (
        ("interpolated_values", ["web_id", "timestamp"]),
        ("summary_values", ["web_id", "summary_type", "interval_start"]),
    ):
        again = read_table(lake, table)
        assert again.drop("ingested_at").sort(keys).equals(first[table].sort(keys))
        assert again.select(pl.struct(keys).is_unique().all()).item()
        assert again["date"].unique().to_list() == [at(7).date()]


def tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, resources: dict[str, object], cursor: str | None
):
    (sensor,) = defs.sensors
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=defs
    ) as context:
        return sensor.evaluate_tick(context)


def test_late_insert_is_found_by_the_sensor_and_the_repair_relands_it(
    emu: Emulator, http: httpx.Client, lake: Path, points: pl.DataFrame, clean_tag: str
) -> None:
    settings = DerivedSettings(summary_interval="30m", summary_types=TYPES, calculation_basis="EventWeighted")
    defs = build_derived_defs(settings)
    resources = make_resources(emu.api, lake)
    defs = dg.Definitions.merge(defs, dg.Definitions(resources=resources))
    (asset,) = build_derived_assets(settings)
    late = {"Timestamp": iso(at(7, 10)), "Value": 1000}
    with dg.instance_for_test() as instance:
        for key in ("2024-05-01-07:00", "2024-05-01-08:00"):
            assert dg.materialize([asset], resources=resources, instance=instance, partition_key=key).success
        quiet = tick(defs, instance, resources, None)
        assert quiet.run_requests == [] and "2 hours re-asked from PI, no change" in quiet.skip_message
        with httpx.Client(base_url=emu.root, timeout=60, headers={"X-Requested-With": "test"}) as admin:
            admin.post(f"/admin/streams/{clean_tag}/insert", json=[late]).raise_for_status()
            try:
                found = tick(defs, instance, resources, quiet.cursor)
                (request,) = found.run_requests
                assert request.partition_key == "2024-05-01-07:00"
                assert request.asset_selection == [asset.key] and request.tags[REPAIR_TAG] == "late_data"
                # In flight: the next tick does not request it again.
                assert tick(defs, instance, resources, found.cursor).run_requests == []
                result = dg.materialize(
                    [asset],
                    resources=resources,
                    instance=instance,
                    partition_key="2024-05-01-07:00",
                    tags=request.tags,
                )
                md = result.asset_materializations_for_node("pi__summary_values")[0].metadata
                # Interval 07:00–07:30 of the clean tag: Total, Count, Average and Maximum changed.
                assert (
                    md["rows_changed"].value >= 4
                    and md["rows_inserted"].value == md["rows_deleted"].value == 0
                )
                landed = landed_summaries(lake, at(7), timedelta(minutes=30))
                ids = points["web_id"].to_list()
                assert landed.equals(raw_summaries(http, ids, at(7), at(9), "30m", "EventWeighted"))
                total = landed.filter((pl.col("web_id") == clean_tag) & (pl.col("summary_type") == "Total"))
                assert total["value"].to_list() == [1004, 8, 16, 32]
                assert tick(defs, instance, resources, found.cursor).run_requests == []
            finally:
                admin.post(
                    f"/admin/streams/{clean_tag}/delete", json={"Timestamps": [late["Timestamp"]]}
                ).raise_for_status()
