"""The opt-in Unity Catalog job (defs/lake/unity_catalog.py): off by default, on with OSIPI_UC_CATALOG, idempotent."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.lake.unity_catalog import (
    UnityCatalogResource,
    unity_catalog_defs,
    unity_catalog_job_and_schedule,
)
from osipi_dagster_tests.spark.conftest import UCServer

pytestmark = pytest.mark.filterwarnings("ignore::polars.exceptions.UnstableWarning")


def test_off_unless_a_catalog_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSIPI_UC_CATALOG", raising=False)
    assert unity_catalog_defs().jobs in (None, [], ())
    monkeypatch.setenv("OSIPI_UC_CATALOG", "main")
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-secret")
    on = unity_catalog_defs()
    assert [job.name for job in on.jobs or []] == ["unity_catalog_job"]
    resource = on.resources["unity_catalog"]  # type: ignore[index]
    assert isinstance(resource.token, dg.EnvVar) and resource.token.env_var_name == "DATABRICKS_TOKEN"
    assert "dapi-secret" not in repr(resource)


def test_the_job_registers_the_landed_tables_once(uc_server: UCServer, landed_lake: Path) -> None:
    catalog = f"osipi_{uuid.uuid4().hex[:8]}"
    job, _ = unity_catalog_job_and_schedule()
    resources = {
        "lake": LakeResource(root_uri=str(landed_lake)),
        "unity_catalog": UnityCatalogResource(url=uc_server.url, token=uc_server.token, catalog=catalog),
    }

    first = job.execute_in_process(resources=resources)
    writes = uc_server.writes()
    second = job.execute_in_process(resources=resources)

    assert (
        first.output_for_node("register_unity_catalog_tables")
        == [
            {"table": f"{catalog}.pi.pi_timeseries", "action": "created"},
            {"table": f"{catalog}.pi.pi_points", "action": "created"},
        ]
    )  # the tables that exist, in the maintenance job's order; the AF and event-frame tables were never written
    assert [r["action"] for r in second.output_for_node("register_unity_catalog_tables")] == ["unchanged"] * 2
    assert uc_server.writes() == writes
    observed = {
        e.asset_key.path[-1]: e.asset_observation_data.asset_observation.metadata[
            "unity_catalog_action"
        ].value
        for e in second.get_asset_observation_events()
    }
    assert observed == {"pi_points": "unchanged", "pi_timeseries": "unchanged"}
    uc = pl.Catalog(uc_server.url, bearer_token=uc_server.token, require_https=False)
    assert sorted(t.name for t in uc.list_tables(catalog, "pi")) == ["pi_points", "pi_timeseries"]
