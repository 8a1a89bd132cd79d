"""The PI Web API resource: the environment contract (dg.EnvVar) → a configured, closed-after-use PI client.

Secrets reach the resource only as EnvVar references, so they never appear in run config, the UI or logs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg

from osipi_dagster.defs.env import env_vars
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.settings import Settings

# Resource field -> environment variable of the settings contract (osipi_dagster/lib/settings.py).
PI_ENV_FIELDS: dict[str, str] = {
    "pi_web_api_url": "PI_WEB_API_URL",
    "auth_method": "PI_AUTH_METHOD",
    "username": "PI_USERNAME",
    "password": "PI_PASSWORD",
    "bearer_token": "PI_BEARER_TOKEN",
    "oidc_token_url": "PI_OIDC_TOKEN_URL",
    "oidc_client_id": "PI_OIDC_CLIENT_ID",
    "oidc_client_secret": "PI_OIDC_CLIENT_SECRET",
    "oidc_scope": "PI_OIDC_SCOPE",
    "verify_tls": "PI_VERIFY_TLS",
    "ca_bundle": "PI_CA_BUNDLE",
    "data_servers": "PI_DATA_SERVERS",
    "tag_filter": "PI_TAG_FILTER",
    "af_databases": "PI_AF_DATABASES",
}


class PIWebAPIResource(dg.ConfigurableResource):
    """Connection and selection settings for one PI Web API.

    Fields hold the raw environment strings (e.g. `verify_tls="false"`, `data_servers="A,B"`) and are parsed by
    `Settings.from_env`, so a bad value fails with the same message (naming the variable) everywhere.
    """

    pi_web_api_url: str
    auth_method: str | None = None
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    oidc_token_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scope: str | None = None
    verify_tls: str | None = None
    ca_bundle: str | None = None
    data_servers: str | None = None
    tag_filter: str | None = None
    af_databases: str | None = None
    timeout_s: float = 30.0
    max_concurrency: int = 8
    max_retries: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PIWebAPIResource:
        """A resource whose set variables are EnvVar references, resolved at run time.

        Unset optional variables are simply left out (an EnvVar on an unset variable would fail at launch), so
        loading the code location and `dg check defs` work with an empty environment.
        """
        configured = env_vars(PI_ENV_FIELDS, environ)
        configured.setdefault("pi_web_api_url", dg.EnvVar("PI_WEB_API_URL"))
        return cls(**configured)  # type: ignore[arg-type]

    def settings(self) -> Settings:
        """The validated settings; raises SettingsError naming the variable and the fix."""
        environ = {
            var: value for field, var in PI_ENV_FIELDS.items() if (value := getattr(self, field)) is not None
        }
        return Settings.from_env(environ)

    def client_config(self) -> ClientConfig:
        return ClientConfig.from_settings(
            self.settings(),
            timeout_s=self.timeout_s,
            max_concurrency=self.max_concurrency,
            max_retries=self.max_retries,
        )

    @contextmanager
    def get_client(self) -> Iterator[PIWebAPIClient]:
        """An open client for one asset computation; its connection pool is closed on exit."""
        with PIWebAPIClient(self.client_config()) as client:
            yield client


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"pi": PIWebAPIResource.from_env()})
