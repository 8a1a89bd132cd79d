"""pi_timeseries quality checks computed in the materialization, against the shared emulator: exact figures on a
clean hour, a blocking failure on duplicate keys, resource thresholds, and a completeness mismatch listing its tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from osipi_dagster.defs.pi import checks
from osipi_dagster.defs.pi.resources import QualityConfig
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.landing.tables import TIMESERIES_SCHEMA
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster_tests.defs.conftest import TAG_FILTER, Model, make_resources, read_table, us
from osipi_dagster_tests.emulator import Emulator

HOUR = "2024-05-01-09:00"
START = datetime(2024, 5, 1, 9, tzinfo=UTC)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def run(resources: dict[str, object], **kwargs: object) -> dg.ExecuteInProcessResult:
    return dg.materialize([pi_timeseries], resources=resources, partition_key=HOUR, **kwargs)


def test_clean_hour_passes_every_check_with_exact_figures(
    resources: dict[str, object], lake: Path, model: Model
) -> None:
    result = run(resources)
    found = evaluations(result)
    assert list(found) == [spec.name for spec in checks.TIMESERIES_CHECKS]
    assert all(e.passed for e in found.values())
    table = read_table(lake, "pi_timeseries")
    assert table["source"].unique().to_list() == ["recorded"]
    # PI's Count = good, non-system events of the archive in the hour: computed from mock_pi's own model.
    expected_good = 0
    for i in model.tag_indices(TAG_FILTER):
        vals = model.archive.recorded(model.catalog.point_at(i), us(START), us(START + timedelta(hours=1)))
        inside = vals.ts_us < us(START + timedelta(hours=1))
        expected_good += int((vals.good & ~vals.is_system & inside).sum())
    complete = found["complete_vs_pi"].metadata
    assert complete["pi_count"].value == complete["lake_count"].value == expected_good
    assert complete["tags_compared"].value == 11
    assert found["unique_keys"].metadata["rows"].value == table.height
    by_state = found["system_states"].metadata["by_state"].value
    assert by_state == dict(
        table.filter(pl.col("is_system")).group_by("value_text").len().sort("value_text").iter_rows()
    )
    no_data = found["tags_with_data"].metadata
    assert no_data["tags_with_data"].value == table["web_id"].n_unique()
    assert found["unique_keys"].severity == dg.AssetCheckSeverity.ERROR
    assert found["good_share"].severity == dg.AssetCheckSeverity.WARN
    md = result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    ages = (table["ingested_at"] - table["timestamp"]).dt.total_microseconds() / 1e6
    assert md["data_age_max_s"].value == pytest.approx(float(ages.max()), abs=0.001)


def test_duplicate_keys_stop_the_run_before_anything_lands(
    resources: dict[str, object], lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(resources).success
    table_before = read_table(lake, "pi_timeseries")
    version = DeltaTable(str(lake / "pi_timeseries")).version()
    original = PIWebAPIClient.iter_recorded

    def twice(self, *args, **kwargs) -> Iterator[pl.DataFrame]:
        for page in original(self, *args, **kwargs):
            yield page
            yield page.head(7)  # a client bug delivering part of a page again

    monkeypatch.setattr(PIWebAPIClient, "iter_recorded", twice)
    result = run(resources, raise_on_error=False)
    # Blocking with ERROR severity: the run fails, so nothing downstream consumes the window.
    assert not result.success
    unique = evaluations(result)["unique_keys"]
    assert not unique.passed and unique.severity == dg.AssetCheckSeverity.ERROR
    assert unique.metadata["offending"].value == 7 and unique.metadata["written"].value is False
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "stopped before the Delta commit: 7 row(s) of 1 tag(s)" in failure.message
    assert result.asset_materializations_for_node("pi__pi_timeseries") == []
    # The lake is unchanged: no commit, the previous rows of the window intact.
    assert DeltaTable(str(lake / "pi_timeseries")).version() == version
    assert read_table(lake, "pi_timeseries").equals(table_before)


def test_schema_drift_check_fires_on_a_real_table_change(resources: dict[str, object], lake: Path) -> None:
    drift = dg.build_column_schema_change_checks(assets=[pi_timeseries])
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize([pi_timeseries], resources=resources, partition_key=HOUR, instance=instance)
        columns = [c.name for c in metadata(first)["dagster/column_schema"].schema.columns]
        assert columns == list(TIMESERIES_SCHEMA)
        # Another writer (a newer release, a manual fix) adds a column to the table in another day.
        extra = (
            read_table(lake, "pi_timeseries")
            .head(1)
            .with_columns(
                pl.col("timestamp").dt.offset_by("2d"),
                pl.col("date").dt.offset_by("2d"),
                pl.lit("manual").alias("comment"),
            )
        )
        write_deltalake(str(lake / "pi_timeseries"), extra.to_arrow(), mode="append", schema_mode="merge")
        second = dg.materialize(
            [pi_timeseries, *drift], resources=resources, partition_key=HOUR, instance=instance
        )
    reported = {c.name: c.type for c in metadata(second)["dagster/column_schema"].schema.columns}
    assert list(reported) == [*TIMESERIES_SCHEMA, "comment"] and reported["comment"] == "String"
    change = evaluations(second)["column_schema_change"]
    assert not change.passed and change.severity == dg.AssetCheckSeverity.WARN
    assert change.description is not None and "Added columns: comment" in change.description


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    return result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata


def test_thresholds_from_the_resource_and_completeness_mismatch(
    emulator: Emulator, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = make_resources(emulator.api, lake, quality=QualityConfig(min_good_share=0.999))
    original = PIWebAPIClient.recorded_counts
    skewed: list[str] = []

    def counts(self, web_ids, start, end) -> pl.DataFrame:
        frame = original(self, web_ids, start, end).sort("web_id")
        skewed.append(frame["web_id"][0])  # PI now knows one more value than the run read (late data)
        return frame.with_columns(
            pl.when(pl.col("web_id") == skewed[0]).then(pl.col("count") + 1).otherwise(pl.col("count"))
        )

    monkeypatch.setattr(PIWebAPIClient, "recorded_counts", counts)
    result = run(resources)
    assert result.success  # neither check is blocking
    found = evaluations(result)
    good = found["good_share"]
    assert not good.passed and good.metadata["min_good_share"].value == 0.999
    assert good.metadata["offending"].value == len(good.metadata["sample"].value) > 0
    complete = found["complete_vs_pi"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.ERROR
    assert complete.metadata["mismatching_tags"].value == 1
    [mismatch] = complete.metadata["mismatches"].value
    assert mismatch["web_id"] == skewed[0] and mismatch["pi_count"] == mismatch["lake_count"] + 1
