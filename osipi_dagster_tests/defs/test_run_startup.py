"""The lake's storage configs are dagster-deltalake's fields, declared locally so a run's start-up skips its imports."""

import subprocess
import sys

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


def test_importing_the_run_path_does_not_import_pandas() -> None:
    code = (
        "import sys; import osipi_dagster.defs.pi.timeseries, osipi_dagster.defs.pi.catalogue; "
        "print(sorted(m for m in ('pandas', 'dagster_deltalake') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
