"""A run's fixed cost: the lake's storage configs are dagster-deltalake's fields declared locally (its import pulls
pandas), and neither the run path's imports nor its lake calls (upsert, table stats, table schema) import pandas."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import dagster_deltalake
import pytest
from dagster_deltalake import config as deltalake_config

from osipi_dagster.defs.lake import storage
from osipi_dagster.defs.lake.resources import LakeResource

PAIRS = [
    (storage.LocalConfig, dagster_deltalake.LocalConfig),
    (storage.S3Config, dagster_deltalake.S3Config),
    (storage.AzureConfig, dagster_deltalake.AzureConfig),
    (storage.GcsConfig, dagster_deltalake.GcsConfig),
    (storage.ClientConfig, deltalake_config.ClientConfig),
]


def shape(model: type[dg.Config]) -> dict[str, tuple[object, object, bool]]:
    return {
        name: (info.annotation, info.default, info.is_required()) for name, info in model.model_fields.items()
    }


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_fields_types_and_defaults_are_dagster_deltalakes(
    ours: type[dg.Config], theirs: type[dg.Config]
) -> None:
    assert ours.__name__ == theirs.__name__
    assert shape(ours) == shape(theirs)


def test_dagster_deltalake_instances_are_accepted_as_their_values() -> None:
    lake = LakeResource(
        root_uri="s3://bucket/lake",
        storage=dagster_deltalake.S3Config(region="eu-west-1", bucket="b"),
        client_options=deltalake_config.ClientConfig(timeout="30s"),
    )
    assert isinstance(lake.storage, storage.S3Config)
    assert lake.options() == {
        "region": "eu-west-1",
        "bucket": "b",
        "imdsv1_fallback": "False",
        "timeout": "30s",
    }


def test_run_config_selects_a_provider_by_key() -> None:
    @dg.asset(required_resource_keys={"lake"})
    def options(context: dg.AssetExecutionContext) -> dict[str, str]:
        return context.resources.lake.options()

    result = dg.materialize(
        [options],
        resources={"lake": LakeResource.configure_at_launch()},
        run_config={
            "resources": {
                "lake": {"config": {"root_uri": "gs://bucket/lake", "storage": {"gcs": {"bucket": "bucket"}}}}
            }
        },
    )
    assert result.output_for_node("options") == {"bucket": "bucket"}


def loaded_after(code: str) -> list[str]:
    """Which of pandas and dagster_deltalake a fresh interpreter holds after running `code`."""
    probe = (
        f"{code}\nimport sys\nprint(','.join(m for m in ('pandas', 'dagster_deltalake') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return [m for m in last.split(",") if m]


def test_importing_the_run_path_does_not_import_pandas() -> None:
    assert loaded_after("import osipi_dagster.defs.pi.timeseries, osipi_dagster.defs.pi.catalogue") == []


def test_the_run_path_lake_calls_do_not_import_pandas(tmp_path: Path) -> None:
    code = f"""
import polars as pl
from osipi_dagster.defs.pi.reporting import table_schema, total_rows
from osipi_dagster.lib.lake import Lake
ref = Lake(root_uri={str(tmp_path)!r}).table("t")
ref.upsert(pl.DataFrame({{"k": [1, 2], "v": ["a", "b"]}}), key=["k"])
ref.upsert(pl.DataFrame({{"k": [2, 3], "v": ["B", "c"]}}), key=["k"])
assert total_rows(ref, -1) == 3, total_rows(ref, -1)
assert dict(table_schema(ref)) == {{"k": pl.Int64, "v": pl.String}}, table_schema(ref)
"""
    assert loaded_after(code) == []
