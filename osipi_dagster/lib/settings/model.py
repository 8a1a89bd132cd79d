"""`Settings`: the one configuration contract of a PI connection, validated, from the environment or a dict.

Each field is declared once (sections.py, quality.py) with its variable; `from_env()` reads today's variables,
`from_dict()` a component's YAML attributes. Both fail fast with a `SettingsError` naming the setting and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from osipi_dagster.lib.lake.uri import REMOTE_SCHEMES
from osipi_dagster.lib.settings.derived import DerivedSettings
from osipi_dagster.lib.settings.fields import EnvLoadable, SettingsError, env_values, label, setting
from osipi_dagster.lib.settings.quality import LateDataSettings, QualityThresholds
from osipi_dagster.lib.settings.sections import (
    PI_URL_EXAMPLE,
    ConnectionFields,
    LakeFields,
    SelectionFields,
    StreamSettings,
)

DEFAULT_START_DATE = date(2024, 1, 1)
DEFAULT_TAG_SHARDS = 1
# One Delta partition per day and shard: more shards than this mostly buys small files.
MAX_TAG_SHARDS = 256


def check_url(value: str, name: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name}={value!r} is not an http(s) URL: use e.g. {PI_URL_EXAMPLE}.")
    return value.rstrip("/")


def check_lake_uri(value: str, name: str) -> str:
    scheme = urlparse(value).scheme
    if scheme not in ("", "file") and scheme not in REMOTE_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in sorted(REMOTE_SCHEMES))
        raise SettingsError(
            f"{name}={value!r} has an unsupported scheme {scheme!r}: use a local path or one of {schemes}."
        )
    return value


# pydantic orders inherited fields from the last base to the first: connection, selection, lake, then ours.
class Settings(EnvLoadable, LakeFields, SelectionFields, ConnectionFields):
    """Validated settings of one PI connection. Secrets are kept out of repr()."""

    model_config = ConfigDict(frozen=True)

    start_date: date = setting(
        DEFAULT_START_DATE, doc="first partition date, YYYY-MM-DD", env="OSIPI_START_DATE"
    )
    tag_shards: int = setting(
        DEFAULT_TAG_SHARDS,
        doc="pi_timeseries shards: tags split by a stable hash of their WebID, each hour x shard its own run "
        "(1 = unsharded; changing it needs a resharded table, see docs/architecture.md)",
        env="OSIPI_TAG_SHARDS",
        ge=1,
        le=MAX_TAG_SHARDS,
    )
    quality: QualityThresholds = Field(default_factory=QualityThresholds, description="pi_timeseries checks")
    late_data: LateDataSettings = Field(default_factory=LateDataSettings, description="the late-data audit")
    stream: StreamSettings = Field(default_factory=StreamSettings, description="the streaming spool")
    derived: DerivedSettings = Field(
        default_factory=DerivedSettings, description="derived reads: interpolated values, summaries (opt-in)"
    )

    @field_validator("pi_web_api_url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return check_url(value, label(cls, "pi_web_api_url", info))

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise SettingsError(
                f"{label(cls, 'ca_bundle', info)}={value!r} does not exist: point it at a PEM file of CA certificates."
            )
        return value

    @field_validator("lake_uri")
    @classmethod
    def _lake_uri(cls, value: str, info: ValidationInfo) -> str:
        return check_lake_uri(value, label(cls, "lake_uri", info))

    @model_validator(mode="after")
    def _auth_is_complete(self, info: ValidationInfo) -> Settings:
        """Every auth method has the settings it needs."""

        def name(field: str) -> str:
            return label(type(self), field, info)

        method = f"{name('auth_method')}={self.auth_method}"
        if self.auth_method == "basic" and not (self.username and self.password):
            raise SettingsError(f"{method} needs {name('username')} and {name('password')}: set both.")
        if self.auth_method == "bearer":
            oidc = (self.oidc_token_url, self.oidc_client_id, self.oidc_client_secret)
            if not self.bearer_token and not all(oidc):
                raise SettingsError(
                    f"{method} needs {name('bearer_token')}, or {name('oidc_token_url')} + {name('oidc_client_id')} "
                    f"+ {name('oidc_client_secret')} for client credentials: set one of them."
                )
            if self.oidc_token_url:
                check_url(self.oidc_token_url, name("oidc_token_url"))
        return self


def validate_environment(environ: Mapping[str, str] | None = None) -> None:
    """Fail fast on every variable that is set but invalid, without requiring PI_WEB_API_URL.

    Called when the code location loads, so `dagster definitions validate` and the UI report a bad setting by name
    instead of the first run failing. With PI_WEB_API_URL set the whole contract is checked (auth completeness too).
    """
    env_settings(environ)


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The set variables as typed field values (nested by section), after validating them as `validate_environment`
    does: what the Dagster layer configures its resources with when the code location loads."""
    raw: dict[tuple[str, ...], str] = {}
    values = env_values(Settings, os.environ if environ is None else environ, raw)
    Settings.validated(values, env_mode=True, raw=raw, ignore_missing=("pi_web_api_url",))
    return values
