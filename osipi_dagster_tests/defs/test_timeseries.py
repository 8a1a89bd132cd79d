"""pi_timeseries against the shared emulator: exact values per hour, idempotent reruns, crashes, ranges, schema.

Every table is read back with polars' Delta reader and compared with mock_pi's archive for the same window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.landing.tables import TIMESERIES_SCHEMA
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster_tests.defs.conftest import TAG_FILTER, Model, make_resources, read_table

HOUR_A = "2024-05-01-09:00"
HOUR_B = "2024-05-01-10:00"


def hour(key: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(key, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
    return start, start + timedelta(hours=1)


def run_hour(
    resources: dict[str, object], key: str, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [pi_timeseries], resources=resources, partition_key=key, raise_on_error=raise_on_error
    )


def keys(frame: pl.DataFrame) -> pl.DataFrame:
    """(web_id, timestamp µs) sorted, the comparable part of a landed window."""
    return frame.select("web_id", pl.col("timestamp").dt.epoch("us").alias("ts_us")).sort("web_id", "ts_us")


def stable(frame: pl.DataFrame) -> pl.DataFrame:
    """Everything but ingested_at, in a canonical order: what must not change between reruns."""
    return frame.drop("ingested_at").sort("web_id", "timestamp", "ordinal")


def test_one_hour_lands_exactly_the_archive(resources: dict[str, object], lake: Path, model: Model) -> None:
    result = run_hour(resources, HOUR_A)
    start, end = hour(HOUR_A)
    table = read_table(lake, "pi_timeseries")
    expected = model.recorded(TAG_FILTER, start, end).sort("web_id", "ts_us")

    assert table.height == expected.height > 500
    assert keys(table).equals(expected)
    assert table["timestamp"].min() >= start and table["timestamp"].max() < end
    assert table["date"].unique().to_list() == [start.date()]
    assert table.select(pl.struct("web_id", "timestamp", "ordinal").is_unique().all()).item()
    # Tag names joined from the catalogue; both data servers contribute. Slow tags may have no value this hour.
    points = {
        model.catalog.point_at(i).web_id: model.catalog.point_at(i) for i in model.tag_indices(TAG_FILTER)
    }
    landed = dict(table.select("web_id", "tag").unique().iter_rows())
    assert landed == {w: points[w].name for w in expected["web_id"].unique()}
    assert {points[w].server.name for w in landed} == {"PISRV01", "PISRV02"}
    assert table.columns == list(TIMESERIES_SCHEMA)
    # Duplicate timestamps are kept, numbered 0, 1, ... in archive order.
    dup = table.filter(pl.struct("web_id", "timestamp").is_duplicated())
    assert dup.height == expected.filter(pl.struct("web_id", "ts_us").is_duplicated()).height == 10
    per_key = dup.group_by("web_id", "timestamp").agg(pl.col("ordinal").sort())
    assert all(o == list(range(len(o))) for o in per_key["ordinal"].to_list())

    mat = result.asset_materializations_for_node("pi__pi_timeseries")[0]
    md = mat.metadata
    assert md["dagster/row_count"].value == expected.height
    assert md["values"].value == expected.height
    assert md["tags_requested"].value == len(points) == 11
    assert md["tags_with_values"].value == len(landed)
    assert md["http_calls"].value >= 1
    assert [c.name for c in md["dagster/column_schema"].schema.columns] == list(TIMESERIES_SCHEMA)
    assert "| web_id |" in md["preview"].value


def test_reruns_are_idempotent_and_neighbours_untouched(resources: dict[str, object], lake: Path) -> None:
    run_hour(resources, HOUR_A)
    run_hour(resources, HOUR_B)
    first = stable(read_table(lake, "pi_timeseries"))
    for _ in range(2):
        run_hour(resources, HOUR_A)
    again = read_table(lake, "pi_timeseries")
    assert stable(again).equals(first)
    # Hour B was not rewritten: its ingested_at is still the one from its only run.
    b_start, _ = hour(HOUR_B)
    b_rows = again.filter(pl.col("timestamp") >= b_start)
    assert b_rows["ingested_at"].n_unique() == 1
    a_rows = again.filter(pl.col("timestamp") < b_start)
    assert a_rows["ingested_at"].min() > b_rows["ingested_at"].max()


def _failing_after(chunks: int):
    """Wrap iter_recorded: re-slice its pages into 100-row chunks and raise after `chunks` of them."""
    original = PIWebAPIClient.iter_recorded

    def iter_recorded(self, *args, **kwargs) -> Iterator[pl.DataFrame]:
        sent = 0
        for page in original(self, *args, **kwargs):
            for offset in range(0, page.height, 100):
                if sent == chunks:
                    raise ConnectionError("simulated: PI Web API connection lost mid-partition")
                sent += 1
                yield page.slice(offset, 100)

    return iter_recorded


def test_crash_mid_write_leaves_previous_state_and_rerun_recovers(
    resources: dict[str, object], lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_hour(resources, HOUR_A)
    before = stable(read_table(lake, "pi_timeseries"))
    version = DeltaTable(str(lake / "pi_timeseries")).version()

    with monkeypatch.context() as patch:
        patch.setattr(PIWebAPIClient, "iter_recorded", _failing_after(chunks=5))
        failed_a = run_hour(resources, HOUR_A, raise_on_error=False)
        failed_b = run_hour(resources, HOUR_B, raise_on_error=False)
    assert not failed_a.success and not failed_b.success
    assert DeltaTable(str(lake / "pi_timeseries")).version() == version
    assert stable(read_table(lake, "pi_timeseries")).equals(before)  # no partial hour B, hour A intact

    run_hour(resources, HOUR_A)
    run_hour(resources, HOUR_B)
    after = read_table(lake, "pi_timeseries")
    b_start, _ = hour(HOUR_B)
    assert stable(after.filter(pl.col("timestamp") < b_start)).equals(before)
    assert after.filter(pl.col("timestamp") >= b_start).height > 0


def test_partition_range_equals_per_partition_runs(emulator, tmp_path: Path, catalogue_lake: Path) -> None:
    import shutil

    lake_range, lake_each = tmp_path / "range", tmp_path / "each"
    shutil.copytree(catalogue_lake, lake_range)
    shutil.copytree(catalogue_lake, lake_each)
    hours = ["2024-05-01-07:00", "2024-05-01-08:00", "2024-05-01-09:00"]
    # A backfill run (BackfillPolicy.multi_run) hands the asset a partition range in one run.
    result = dg.materialize(
        [pi_timeseries],
        resources=make_resources(emulator.api, lake_range),
        tags={
            "dagster/asset_partition_range_start": hours[0],
            "dagster/asset_partition_range_end": hours[-1],
        },
    )
    assert result.success
    for key in hours:
        run_hour(make_resources(emulator.api, lake_each), key)
    ranged, each = read_table(lake_range, "pi_timeseries"), read_table(lake_each, "pi_timeseries")
    assert ranged.height == each.height > 0
    assert stable(ranged).equals(stable(each))
    # One commit for the range (plus the table's creation), three for the per-partition runs.
    assert (
        result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata["values"].value
        == ranged.height
    )
    assert len(result.asset_materializations_for_node("pi__pi_timeseries")) == 3


def test_schema_evolution_adds_columns_to_an_older_table(
    resources: dict[str, object], lake: Path, model: Model
) -> None:
    # An older release wrote pi_timeseries without `units` and `annotated`.
    old_cols = [c for c in TIMESERIES_SCHEMA if c not in ("units", "annotated")]
    run_hour(resources, HOUR_A)
    old = read_table(lake, "pi_timeseries").select(old_cols)
    uri = str(lake / "pi_timeseries")
    DeltaTable(uri)  # exists
    import shutil

    shutil.rmtree(uri)
    write_deltalake(uri, old.to_arrow(), partition_by=["date"])
    run_hour(resources, HOUR_B)
    table = read_table(lake, "pi_timeseries")
    assert set(table.columns) == set(TIMESERIES_SCHEMA)
    b_start, b_end = hour(HOUR_B)
    old_rows = table.filter(pl.col("timestamp") < b_start)
    new_rows = table.filter(pl.col("timestamp") >= b_start)
    assert old_rows.height == old.height and old_rows["units"].null_count() == old.height
    assert new_rows.height == model.recorded(TAG_FILTER, b_start, b_end).height
    assert new_rows["units"].null_count() == 0


def test_new_tags_join_from_the_catalogue(resources: dict[str, object], lake: Path, model: Model) -> None:
    """The tags come from the current pi_points rows: a tag missing from the catalogue is not extracted."""
    uri = str(lake / "pi_points")
    points = read_table(lake, "pi_points")
    dropped = points.filter(pl.col("name") == "U100-TI00114.PV")["web_id"].item()
    DeltaTable(uri).update(predicate=f"web_id = '{dropped}'", updates={"is_current": "false"})
    run_hour(resources, HOUR_A)
    assert dropped not in read_table(lake, "pi_timeseries")["web_id"].to_list()
    DeltaTable(uri).update(predicate=f"web_id = '{dropped}'", updates={"is_current": "true"})
    run_hour(resources, HOUR_A)
    start, end = hour(HOUR_A)
    assert keys(read_table(lake, "pi_timeseries")).equals(
        model.recorded(TAG_FILTER, start, end).sort("web_id", "ts_us")
    )


def test_missing_catalogue_is_a_clear_failure(emulator, tmp_path: Path) -> None:
    result = run_hour(make_resources(emulator.api, tmp_path / "empty_lake"), HOUR_A, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "materialize pi/pi_points first" in failure.message


def test_a_tag_deleted_in_pi_is_skipped_and_reported(
    resources: dict[str, object], lake: Path, model: Model
) -> None:
    # The catalogue still lists a tag that PI no longer has (deleted after the last pi_points run).
    points_uri = str(lake / "pi_points")
    current = pl.read_delta(points_uri).filter(pl.col("is_current") & pl.col("name").str.starts_with("U1"))
    ghost = current.head(1).with_columns(
        pl.lit("P1DPUElTUlYwMVxVMS1USS1ERUxFVEVE").alias("web_id"),  # PathOnly id of \\PISRV01\U1-TI-DELETED
        pl.lit("U1-TI-DELETED").alias("name"),
        pl.lit("\\\\PISRV01\\U1-TI-DELETED").alias("path"),
    )
    write_deltalake(points_uri, ghost.to_arrow(), mode="append")

    result = run_hour(resources, HOUR_A)
    start, end = hour(HOUR_A)
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    assert md["tags_unknown_to_pi"].value == 1
    assert md["tags_unknown_sample"].value == ["P1DPUElTUlYwMVxVMS1USS1ERUxFVEVE"]
    # Every other tag landed exactly as PI holds it.
    assert keys(read_table(lake, "pi_timeseries")).equals(
        model.recorded(TAG_FILTER, start, end).sort("web_id", "ts_us")
    )


def test_a_tag_filter_run_replaces_only_its_own_tags(emulator, lake: Path) -> None:
    """Two jobs with different PI_TAG_FILTERs share the table: rerunning one leaves the other's rows of the same
    hour alone, and a filter that matches nothing deletes nothing."""
    temps = make_resources(emulator.api, lake)  # TAG_FILTER
    flows = make_resources(emulator.api, lake, tag_filter="U1*-FIC*")
    run_hour(temps, HOUR_A)
    run_hour(flows, HOUR_A)
    both = read_table(lake, "pi_timeseries")
    flow_rows = both.filter(pl.col("tag").str.contains("FIC"))
    assert flow_rows.height > 0 and both.height > flow_rows.height
    run_hour(temps, HOUR_A)
    again = read_table(lake, "pi_timeseries")
    assert stable(again.filter(pl.col("tag").str.contains("FIC"))).equals(stable(flow_rows))
    assert keys(again).equals(keys(both))
    assert run_hour(make_resources(emulator.api, lake, tag_filter="NO-SUCH-TAG*"), HOUR_A).success
    assert keys(read_table(lake, "pi_timeseries")).equals(keys(both))
