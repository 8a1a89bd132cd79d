"""Resources carry the configuration contract as typed fields: what the UI shows, what a run may override, and what
never leaves an EnvVar reference (secrets).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from dagster_deltalake import AzureConfig, LocalConfig, S3Config
from dagster_deltalake.config import ClientConfig as DeltaClientConfig

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.resources import LateDataConfig, PIWebAPIResource, QualityConfig
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.settings import (
    ConnectionFields,
    LateDataSettings,
    QualityThresholds,
    SelectionFields,
    SettingsError,
    StreamSettings,
)
from osipi_dagster_tests.defs.conftest import TAG_FILTER
from osipi_dagster_tests.emulator import Emulator

HOUR = "2024-05-01-09:00"
ENV = {
    "PI_WEB_API_URL": "https://pi.example.com/piwebapi",
    "PI_AUTH_METHOD": "basic",
    "PI_USERNAME": "svc-pi",
    "PI_PASSWORD": "hunter2-value",
    "PI_VERIFY_TLS": "false",
    "PI_DATA_SERVERS": "PISRV01, PISRV02",
    "PI_TAG_FILTER": "U1*",
    "OSIPI_QUALITY_MIN_GOOD_SHARE": "0.75",
    "OSIPI_LATE_DATA_LOOKBACK_HOURS": "48",
    "OSIPI_LATE_DATA_EVENT_FRAMES": "no",
    "OSIPI_LAKE_URI": "s3://bucket/lake",
    "OSIPI_LAKE_STORAGE_OPTIONS": '{"AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}',
    "OSIPI_STREAM_SPOOL": "/srv/spool",
    "OSIPI_STREAM_MIN_RUN_INTERVAL_S": "30",
}


def ui_fields(resource: type[dg.ConfigurableResource]) -> dict[str, object]:
    """The config fields the UI shows for a resource type: name -> Dagster config field."""
    return dict(resource.to_config_schema().as_field().config_type.fields)  # type: ignore[attr-defined]


def test_pi_resource_fields_are_the_contract_field_lists_with_their_descriptions() -> None:
    shown = ui_fields(PIWebAPIResource)
    contract = {**ConnectionFields.model_fields, **SelectionFields.model_fields}
    assert set(shown) == {*contract, "quality", "late_data"}
    for name, info in contract.items():
        assert shown[name].description == info.description, name
    quality = dict(shown["quality"].config_type.fields)
    late = dict(shown["late_data"].config_type.fields)
    assert set(quality) == set(QualityThresholds.model_fields)
    assert set(late) == set(LateDataSettings.model_fields)
    assert set(ui_fields(SpoolResource)) == set(StreamSettings.model_fields)


def test_from_env_types_every_setting_and_keeps_secrets_as_envvars() -> None:
    pi = PIWebAPIResource.from_env(ENV)
    # Typed values, parsed at load and shown as such in the UI.
    assert pi.verify_tls is False and pi.data_servers == ["PISRV01", "PISRV02"] and pi.tag_filter == "U1*"
    assert pi.auth_method == "basic" and pi.username == "svc-pi"
    assert pi.quality.min_good_share == 0.75 and pi.late_data.lookback_hours == 48
    assert pi.late_data.watch_event_frames is False
    # Secrets and the required URL stay references to their variables.
    assert isinstance(pi.password, dg.EnvVar) and pi.password == "PI_PASSWORD"
    assert isinstance(pi.pi_web_api_url, dg.EnvVar)
    assert "hunter2-value" not in repr(pi) and "hunter2-value" not in json.dumps(pi.model_dump(), default=str)
    lake = LakeResource.from_env(ENV)
    assert lake.root_uri == "s3://bucket/lake"
    assert isinstance(lake.storage_options_json, dg.EnvVar)
    assert "s3cr3t-value" not in json.dumps(lake.model_dump(), default=str)
    spool = SpoolResource.from_env(ENV)
    assert spool.directory == "/srv/spool" and spool.min_run_interval_s == 30.0


def test_from_env_fails_at_load_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="PI_VERIFY_TLS='maybe' is not a boolean"):
        PIWebAPIResource.from_env({"PI_VERIFY_TLS": "maybe"})
    with pytest.raises(SettingsError, match="OSIPI_QUALITY_MIN_GOOD_SHARE='2' is out of range"):
        PIWebAPIResource.from_env({"OSIPI_QUALITY_MIN_GOOD_SHARE": "2"})
    with pytest.raises(SettingsError, match="OSIPI_STREAM_MIN_RUN_INTERVAL_S='soon' is not a number"):
        SpoolResource.from_env({"OSIPI_STREAM_MIN_RUN_INTERVAL_S": "soon"})


def test_resource_settings_are_validated_with_field_and_variable_names() -> None:
    with pytest.raises(SettingsError, match=r"username \(PI_USERNAME\) and password \(PI_PASSWORD\)"):
        PIWebAPIResource(pi_web_api_url="https://pi/piwebapi", auth_method="basic", username="u").settings()
    with pytest.raises(ValueError, match="checksum_hours"):
        LateDataConfig(lookback_hours=2, checksum_hours=5)
    settings = PIWebAPIResource(
        pi_web_api_url="https://pi/piwebapi", max_concurrency=2, quality=QualityConfig(sample_size=3)
    ).settings()
    assert settings.quality.sample_size == 3 and settings.max_concurrency == 2


def test_lake_storage_typed_configs_merge_into_deltalake_options(tmp_path: Path) -> None:
    lake = LakeResource(
        root_uri="s3://bucket/lake",
        storage=S3Config(region="eu-west-1", endpoint="http://127.0.0.1:9000", allow_unsafe_rename=True),
        client_options=DeltaClientConfig(allow_http=True),
        storage_options={"AWS_S3_LOCKING_PROVIDER": "dynamodb"},
        storage_options_json='{"region": "us-east-1"}',
    )
    assert lake.options() == {
        "region": "us-east-1",  # the environment's JSON wins
        "endpoint": "http://127.0.0.1:9000",
        "imdsv1_fallback": "False",
        "allow_unsafe_rename": "True",
        "allow_http": "True",
        "AWS_S3_LOCKING_PROVIDER": "dynamodb",
    }
    assert LakeResource(root_uri=str(tmp_path), storage=LocalConfig()).options() == {}
    with pytest.raises(SettingsError, match="lake storage is azure but root_uri='s3://bucket/lake'"):
        LakeResource(root_uri="s3://bucket/lake", storage=AzureConfig(account_name="acct")).get_lake()
    with pytest.raises(
        SettingsError, match=r"root_uri \(OSIPI_LAKE_URI\)='ftp://h/l' has an unsupported scheme"
    ):
        LakeResource(root_uri="ftp://h/l").get_lake()


def test_a_run_overrides_quality_thresholds_in_its_run_config(emulator: Emulator, lake: Path) -> None:
    """Thresholds are resource config, not process environment: one run can tighten them for itself."""
    resources = {
        "pi": PIWebAPIResource(pi_web_api_url=emulator.api),
        "lake": LakeResource(root_uri=str(lake)),
    }
    run_config = {
        "resources": {
            "pi": {
                "config": {
                    "pi_web_api_url": emulator.api,
                    "tag_filter": TAG_FILTER,
                    "quality": {"min_good_share": 1.0},
                }
            }
        }
    }
    result = dg.materialize([pi_timeseries], resources=resources, partition_key=HOUR, run_config=run_config)
    good = next(e for e in result.get_asset_check_evaluations() if e.check_name == "good_share")
    assert good.metadata["min_good_share"].value == 1.0
    default = dg.materialize(
        [pi_timeseries],
        resources={**resources, "pi": PIWebAPIResource(pi_web_api_url=emulator.api, tag_filter=TAG_FILTER)},
        partition_key=HOUR,
    )
    good = next(e for e in default.get_asset_check_evaluations() if e.check_name == "good_share")
    assert good.metadata["min_good_share"].value == 0.9
