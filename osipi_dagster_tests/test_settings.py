"""The configuration contract: defaults, parsing from the environment or a dict, errors that name the setting and
the fix, and the README/.env.example reference generated from the one field list."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from osipi_dagster.lib.settings import Settings, SettingsError, validate_environment, variables
from osipi_dagster.lib.settings.reference import BEGIN, END, all_variables, between, env_example, readme_table

ROOT = Path(__file__).resolve().parent.parent
URL = {"PI_WEB_API_URL": "https://pi.example.com/piwebapi/"}
URL_D = {"pi_web_api_url": "https://pi.example.com/piwebapi"}


def test_defaults() -> None:
    s = Settings.from_env(URL)
    assert s.pi_web_api_url == "https://pi.example.com/piwebapi"
    assert s.auth_method == "anonymous"
    assert s.verify_tls is True
    assert s.tag_filter == "*"
    assert s.data_servers == [] and s.af_databases == []
    assert s.start_date == date(2024, 1, 1)
    assert s.lake_uri == "./data/lake"


def test_lists_and_values_parsed() -> None:
    s = Settings.from_env(
        {
            **URL,
            "PI_DATA_SERVERS": "PISRV01, PISRV02 ,",
            "PI_AF_DATABASES": r"\\AF\Plant,\\AF\Mine",
            "PI_TAG_FILTER": "CDT*",
            "PI_VERIFY_TLS": "false",
            "OSIPI_START_DATE": "2025-03-04",
            "OSIPI_LAKE_URI": "s3://bucket/lake",
            "OSIPI_LAKE_STORAGE_OPTIONS": '{"AWS_REGION": "eu-west-1"}',
        }
    )
    assert s.data_servers == ["PISRV01", "PISRV02"]
    assert s.af_databases == [r"\\AF\Plant", r"\\AF\Mine"]
    assert s.tag_filter == "CDT*"
    assert s.verify_tls is False
    assert s.start_date == date(2025, 3, 4)
    assert s.lake_uri == "s3://bucket/lake"
    assert s.lake_storage_options == {"AWS_REGION": "eu-west-1"}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "PI_WEB_API_URL"),
        ({"PI_WEB_API_URL": "pi.example.com"}, "PI_WEB_API_URL"),
        ({**URL, "PI_AUTH_METHOD": "ntlm"}, "PI_AUTH_METHOD"),
        ({**URL, "PI_AUTH_METHOD": "basic", "PI_USERNAME": "u"}, "PI_PASSWORD"),
        ({**URL, "PI_AUTH_METHOD": "bearer"}, "PI_OIDC_CLIENT_SECRET"),
        ({**URL, "PI_VERIFY_TLS": "maybe"}, "PI_VERIFY_TLS"),
        ({**URL, "PI_CA_BUNDLE": "/nonexistent/ca.pem"}, "PI_CA_BUNDLE"),
        ({**URL, "OSIPI_START_DATE": "01/02/2024"}, "OSIPI_START_DATE"),
        ({**URL, "OSIPI_LAKE_URI": "ftp://host/lake"}, "OSIPI_LAKE_URI"),
        ({**URL, "OSIPI_LAKE_STORAGE_OPTIONS": "{not json"}, "OSIPI_LAKE_STORAGE_OPTIONS"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_secrets_hidden_from_repr() -> None:
    s = Settings.from_env(
        {
            **URL,
            "PI_AUTH_METHOD": "bearer",
            "PI_OIDC_TOKEN_URL": "https://idp/connect/token",
            "PI_OIDC_CLIENT_ID": "client",
            "PI_OIDC_CLIENT_SECRET": "s3cr3t-value",
            "PI_PASSWORD": "hunter2-value",
        }
    )
    text = repr(s) + str(s)
    assert "s3cr3t-value" not in text and "hunter2-value" not in text
    assert s.oidc_client_secret == "s3cr3t-value"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PI_VERIFY_TLS": "maybe"}, "PI_VERIFY_TLS"),
        ({"PI_AUTH_METHOD": "ntlm"}, "PI_AUTH_METHOD"),
        ({"OSIPI_LAKE_URI": "ftp://host/lake"}, "OSIPI_LAKE_URI"),
        ({"OSIPI_START_DATE": "2024-13-01"}, "OSIPI_START_DATE"),
        ({**URL, "PI_AUTH_METHOD": "basic"}, "PI_USERNAME"),
    ],
)
def test_validate_environment_rejects_set_but_invalid_variables(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        validate_environment(env)


def test_validate_environment_accepts_an_empty_environment() -> None:
    validate_environment({})  # loading the code location needs no variable at all


# ---------------------------------------------------------------------------------------------------------------
# The same contract from a dict (a component's YAML attributes): errors name the field path and its variable.


def test_from_dict_builds_the_same_settings_as_the_environment() -> None:
    from_env = Settings.from_env(
        {
            **URL,
            "PI_DATA_SERVERS": "A,B",
            "PI_VERIFY_TLS": "false",
            "OSIPI_QUALITY_MIN_GOOD_SHARE": "0.75",
            "OSIPI_LATE_DATA_LOOKBACK_HOURS": "48",
            "OSIPI_STREAM_MIN_RUN_INTERVAL_S": "30",
        }
    )
    from_dict = Settings.from_dict(
        {
            "pi_web_api_url": "https://pi.example.com/piwebapi/",
            "data_servers": ["A", "B"],
            "verify_tls": False,
            "quality": {"min_good_share": 0.75},
            "late_data": {"lookback_hours": 48},
            "stream": {"min_run_interval_s": 30},
        }
    )
    assert from_dict == from_env
    assert from_env.quality.min_good_share == 0.75 and from_env.late_data.lookback_hours == 48


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, r"pi_web_api_url \(PI_WEB_API_URL\) is not set"),
        (
            {"pi_web_api_url": "pi.example.com"},
            r"pi_web_api_url \(PI_WEB_API_URL\)='pi.example.com' is not an http",
        ),
        ({**URL_D, "verify_tls": "maybe"}, r"verify_tls \(PI_VERIFY_TLS\)='maybe' is not valid"),
        ({**URL_D, "tag_fliter": "U1*"}, r"tag_fliter is not a setting: remove it \(known: .*tag_filter"),
        (
            {**URL_D, "quality": {"min_good_share": 2}},
            r"quality.min_good_share \(OSIPI_QUALITY_MIN_GOOD_SHARE\)=2 ",
        ),
        ({**URL_D, "quality": {"min_god_share": 0.5}}, r"quality.min_god_share is not a setting"),
        (
            {**URL_D, "late_data": {"lookback_hours": 2, "checksum_hours": 5}},
            r"checksum_hours \(OSIPI_LATE_DATA_CHECKSUM_HOURS\)=5 exceeds lookback_hours",
        ),
        (
            {**URL_D, "auth_method": "basic", "username": "u"},
            r"auth_method \(PI_AUTH_METHOD\)=basic needs username \(PI_USERNAME\) and password \(PI_PASSWORD\)",
        ),
        (
            {**URL_D, "lake_uri": "ftp://h/l"},
            r"lake_uri \(OSIPI_LAKE_URI\)='ftp://h/l' has an unsupported scheme",
        ),
    ],
)
def test_from_dict_errors_name_the_field_and_its_variable(data: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_dict(data)


def test_every_problem_is_reported_at_once_and_secrets_are_never_quoted() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_dict({**URL_D, "verify_tls": "maybe", "password": 12345678, "max_concurrency": 0})
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("password (PI_PASSWORD) is not valid") for line in lines)
    assert "12345678" not in str(caught.value)
    assert any("max_concurrency=0 is out of range: use a value >= 1" in line for line in lines)
    with pytest.raises(SettingsError) as env_caught:
        Settings.from_env({**URL, "OSIPI_LAKE_STORAGE_OPTIONS": '["s3cr3t-key"]'})
    assert "OSIPI_LAKE_STORAGE_OPTIONS must be a JSON object" in str(env_caught.value)
    assert "s3cr3t-key" not in str(env_caught.value)


def test_every_variable_has_one_field_and_every_field_a_description() -> None:
    found = list(variables(Settings))
    names = [v.name for v in found]
    assert len(names) == len(set(names))
    assert {"PI_WEB_API_URL", "OSIPI_QUALITY_MIN_GOOD_SHARE", "OSIPI_LATE_DATA_EVENT_FRAMES"} <= set(names)
    assert all(v.doc for v in found)
    secrets = {v.name for v in found if v.secret}
    assert secrets == {
        "PI_PASSWORD",
        "PI_BEARER_TOKEN",
        "PI_OIDC_CLIENT_SECRET",
        "OSIPI_LAKE_STORAGE_OPTIONS",
    }


def test_readme_and_env_example_list_exactly_the_contract() -> None:
    """README.md's table and .env.example's block are generated from the field list (scripts/settings_reference.py);
    every PI_* / OSIPI_* variable they mention is a contract variable, an alert destination's or an opt-in
    integration's (Unity Catalog, Pipes to Databricks)."""
    from osipi_dagster.defs.databricks.pipes import DATABRICKS_ENV
    from osipi_dagster.defs.quality.alert_destinations import ENV as ALERT_ENV
    from osipi_dagster.lib.lake.unity_catalog import UC_ENV

    for path, render in ((ROOT / "README.md", readme_table), (ROOT / ".env.example", env_example)):
        text = path.read_text()
        assert between(text, BEGIN, END, render()) == text, (
            f"{path.name} is out of date: run .venv/bin/python scripts/settings_reference.py"
        )
        mentioned = set(re.findall(r"\b(?:PI|OSIPI)_[A-Z0-9_]+\b", text))
        known = {v.name for v in all_variables()} | set(ALERT_ENV.values()) | set(UC_ENV)
        known |= set(DATABRICKS_ENV.values())
        assert mentioned - known == set(), path.name
        assert {v.name for v in all_variables()} <= mentioned
