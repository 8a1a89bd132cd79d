"""The environment contract: defaults, parsing, and errors that name the variable and the fix."""

from __future__ import annotations

from datetime import date

import pytest

from osipi_dagster.lib.settings import Settings, SettingsError, validate_environment

URL = {"PI_WEB_API_URL": "https://pi.example.com/piwebapi/"}


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
