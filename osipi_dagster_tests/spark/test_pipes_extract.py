"""The Databricks Pipes asset with its entry point run locally under `PipesSubprocessClient`, through the real Pipes
protocol: a child process with its own local Spark reads the hour from mock_pi with the `osipi` source, writes it
with `write_window`, and its logs, metadata and check results arrive in Dagster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from osipi_dagster.defs.databricks.pipes import (
    ASSET_KEY,
    OsipiPipesResource,
    build_pipes_asset,
    databricks_defs,
)
from osipi_dagster_tests.defs.conftest import TAG_FILTER
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.spark.conftest import LANDED_HOUR, spark_conf, submit_args

KEY = ["web_id", "timestamp", "ordinal"]


def test_the_hour_lands_and_reports_back(emulator: Emulator, landed_lake: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    child_spark = spark_conf(warehouse, tmp_path / "local") | {"spark.sql.session.timeZone": "UTC"}
    resource = OsipiPipesResource(
        table="default.pi_timeseries",
        mode="subprocess",
        tag_filter=TAG_FILTER,
        subprocess_env={
            "PYSPARK_SUBMIT_ARGS": submit_args(child_spark),
            "PYSPARK_PYTHON": sys.executable,
            "PI_WEB_API_URL": emulator.api,
        },
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_pipes_asset()],
            resources={"osipi_pipes": resource},
            partition_key=LANDED_HOUR,
            instance=instance,
        )
        logs = [e.user_message for e in instance.all_logs(result.run_id)]

    assert result.success
    landed = pl.read_delta(str(landed_lake / "pi_timeseries"))
    (materialization,) = result.asset_materializations_for_node("databricks__pi_timeseries")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["dagster/row_count"] == landed.height
    assert metadata["dagster/table_name"] == "default.pi_timeseries"
    assert metadata["table_created"] is True
    assert metadata["tags_with_values"] == landed["web_id"].n_unique()
    assert (metadata["window_start"], metadata["window_end"]) == (
        "2024-05-01T09:00:00+00:00",
        "2024-05-01T10:00:00+00:00",
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"unique_keys": True, "window_landed": True}
    assert all(e.asset_key == ASSET_KEY for e in result.get_asset_check_evaluations())
    assert any(f"{landed.height} rows of" in message for message in logs)

    # What the child wrote equals what the Dagster asset landed for the same hour.
    written = pl.read_delta(str(warehouse / "pi_timeseries"))
    assert written.drop("ingested_at").sort(KEY).equals(landed.drop("ingested_at").sort(KEY))


def test_off_unless_a_table_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSIPI_DATABRICKS_TABLE", raising=False)
    assert not databricks_defs().assets
    monkeypatch.setenv("OSIPI_DATABRICKS_TABLE", "main.pi.pi_timeseries")
    monkeypatch.setenv("OSIPI_DATABRICKS_CLUSTER_ID", "0101-abc")
    monkeypatch.setenv("OSIPI_DATABRICKS_SCRIPT", "/Workspace/osipi/pipes_extract.py")
    on = databricks_defs()
    assert [a.key for a in on.assets or []] == [ASSET_KEY]  # type: ignore[union-attr]
    resource = OsipiPipesResource(table="main.pi.pi_timeseries", cluster_id="0101-abc", script="/W/p.py")
    assert resource.task("dbfs") == {
        "task_key": "osipi_extract",
        "spark_python_task": {"python_file": "/W/p.py", "parameters": ["--pipes-transport", "dbfs"]},
        "existing_cluster_id": "0101-abc",
    }
    with pytest.raises(dg.Failure, match="No Databricks compute"):
        OsipiPipesResource(table="t", script="/W/p.py").task("dbfs")
