"""PIConnection attributes in-process: each mistake is one line naming the field and the fix; secrets stay EnvVars."""

from __future__ import annotations

import dagster as dg
import pytest

from osipi_dagster.components.pi_connection import PIConnection, PIConnectionError

URL = "https://pi.example.com/piwebapi"


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"pi_web_api_url": URL, "tag_filtr": "*"}, "tag_filtr: unknown field: remove it, or use one of"),
        ({"pi_web_api_url": URL, "quality": {"min_good": 1}}, "quality.min_good: unknown field"),
        (
            {"pi_web_api_url": "pi.example.com"},
            "pi_web_api_url (PI_WEB_API_URL)='pi.example.com' is not an http",
        ),
        (
            {"pi_web_api_url": "{{ env.OSIPI_TEST_UNSET_URL }}"},
            "environment variable OSIPI_TEST_UNSET_URL is not set",
        ),
        (
            {"pi_web_api_url": URL, "auth_method": "basic", "username": "u", "password": "hunter2"},
            "password: a literal secret is not allowed: write '{{ env.VAR }}'",
        ),
        ({"pi_web_api_url": URL, "schedules": {"hourly": "0 * * * *"}}, "schedules: unknown ['hourly']"),
        ({"pi_web_api_url": URL, "quality": {"min_good_share": 2}}, "quality.min_good_share"),
    ],
)
def test_mistakes_name_the_field(attributes: dict, named: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSIPI_TEST_UNSET_URL", raising=False)
    with pytest.raises(PIConnectionError) as err:
        PIConnection.from_attributes("site_b", attributes)
    assert "site_b/defs.yaml" in str(err.value)
    assert named in str(err.value)
    assert "hunter2" not in str(err.value)


def test_secret_reaches_the_resource_as_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_B_PASSWORD", "s3cret")
    conn = PIConnection.from_attributes(
        "site_b",
        {
            "pi_web_api_url": URL,
            "auth_method": "basic",
            "username": "svc",
            "password": "{{ env.SITE_B_PASSWORD }}",
            "lake_uri": "./data/lake",
            "tag_filter": "U1*",
            "schedules": {"catalogue": "0 3 * * *"},
            "timezone": "Europe/Paris",
        },
    )
    pi = conn.pi_resource()
    assert pi.password == dg.EnvVar("SITE_B_PASSWORD")
    assert pi.tag_filter == "U1*" and pi.username == "svc"
    assert conn.lake_resource().root_uri == "./data/lake/site_b"
    schedules = {s.name: s for s in conn.build_defs(None).schedules or []}  # type: ignore[arg-type]
    catalogue = schedules["site_b__pi_catalogue_daily_schedule"]
    assert catalogue.cron_schedule == "0 3 * * *" and catalogue.execution_timezone == "Europe/Paris"


def test_folder_name_must_be_an_identifier() -> None:
    with pytest.raises(PIConnectionError, match="folder name 'Site-B'"):
        PIConnection.from_attributes("Site-B", {"pi_web_api_url": URL})
