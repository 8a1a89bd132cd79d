"""The environment contract: every setting osipi-dagster reads, validated in one place.

No Dagster import. `Settings.from_env()` fails fast with a `SettingsError` that names the variable and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import date
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict

AuthMethod = Literal["anonymous", "basic", "kerberos", "bearer"]
AUTH_METHODS: tuple[str, ...] = ("anonymous", "basic", "kerberos", "bearer")
DEFAULT_START_DATE = date(2024, 1, 1)
DEFAULT_LAKE_URI = "./data/lake"
REMOTE_LAKE_SCHEMES = ("s3", "s3a", "abfs", "abfss", "az", "adl", "gs", "gcs")

# Variable -> one-line description, for the PI and lake part of the contract (README.md and .env.example list every
# variable for users; nothing reads this table at run time).
VARIABLES: dict[str, str] = {
    "PI_WEB_API_URL": "Base URL of the PI Web API, e.g. https://pi.example.com/piwebapi",
    "PI_AUTH_METHOD": "anonymous | basic | kerberos | bearer (default anonymous)",
    "PI_USERNAME": "user for basic auth (DOMAIN\\user is fine)",
    "PI_PASSWORD": "password for basic auth",
    "PI_BEARER_TOKEN": "static bearer token (bearer auth), or use the OIDC variables",
    "PI_OIDC_TOKEN_URL": "OIDC token endpoint for client-credentials (bearer auth)",
    "PI_OIDC_CLIENT_ID": "OIDC client id",
    "PI_OIDC_CLIENT_SECRET": "OIDC client secret",
    "PI_OIDC_SCOPE": "optional OIDC scope",
    "PI_VERIFY_TLS": "verify TLS certificates: true (default) | false",
    "PI_CA_BUNDLE": "path to a PEM CA bundle for a private PKI",
    "PI_DATA_SERVERS": "comma-separated data server names (default: all)",
    "PI_TAG_FILTER": "PI name filter for tags (default *)",
    "PI_AF_DATABASES": "comma-separated AF database paths like \\\\AFSERVER\\Database (default: all)",
    "OSIPI_START_DATE": "first partition date, YYYY-MM-DD (default 2024-01-01)",
    "OSIPI_LAKE_URI": "root of the Delta tables: a path (default ./data/lake) or s3://, abfss://, gs:// URI",
    "OSIPI_LAKE_STORAGE_OPTIONS": "JSON object of deltalake storage options for remote lakes (keys/regions)",
}


class SettingsError(ValueError):
    """A missing or invalid setting; the message names the variable and how to fix it."""


class Settings(BaseModel):
    """Validated settings. Secrets are kept out of repr()."""

    model_config = ConfigDict(frozen=True)

    pi_web_api_url: str
    auth_method: AuthMethod = "anonymous"
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    oidc_token_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scope: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    data_servers: list[str] = []
    tag_filter: str = "*"
    af_databases: list[str] = []
    start_date: date = DEFAULT_START_DATE
    lake_uri: str = DEFAULT_LAKE_URI
    lake_storage_options: dict[str, str] = {}

    def __repr_args__(self):  # type: ignore[override]
        hidden = {"password", "bearer_token", "oidc_client_secret", "lake_storage_options"}
        for key, value in super().__repr_args__():
            yield key, ("***" if key in hidden and value else value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() != "" else None

        url = get("PI_WEB_API_URL")
        if url is None:
            raise SettingsError(
                "PI_WEB_API_URL is not set: set it to your PI Web API base URL, "
                "e.g. PI_WEB_API_URL=https://pi.example.com/piwebapi (make demo sets it to the emulator)."
            )
        return cls(
            pi_web_api_url=parse_url(url),
            auth_method=parse_auth_method(get("PI_AUTH_METHOD")),
            username=get("PI_USERNAME"),
            password=get("PI_PASSWORD"),
            bearer_token=get("PI_BEARER_TOKEN"),
            oidc_token_url=get("PI_OIDC_TOKEN_URL"),
            oidc_client_id=get("PI_OIDC_CLIENT_ID"),
            oidc_client_secret=get("PI_OIDC_CLIENT_SECRET"),
            oidc_scope=get("PI_OIDC_SCOPE"),
            verify_tls=parse_bool("PI_VERIFY_TLS", get("PI_VERIFY_TLS"), default=True),
            ca_bundle=parse_ca_bundle(get("PI_CA_BUNDLE")),
            data_servers=parse_list(get("PI_DATA_SERVERS")),
            tag_filter=get("PI_TAG_FILTER") or "*",
            af_databases=parse_list(get("PI_AF_DATABASES")),
            start_date=parse_start_date(get("OSIPI_START_DATE")),
            lake_uri=parse_lake_uri(get("OSIPI_LAKE_URI")),
            lake_storage_options=parse_storage_options(get("OSIPI_LAKE_STORAGE_OPTIONS")),
        ).check_auth()

    def check_auth(self) -> Settings:
        """Every auth method has the variables it needs."""
        if self.auth_method == "basic" and not (self.username and self.password):
            raise SettingsError("PI_AUTH_METHOD=basic needs PI_USERNAME and PI_PASSWORD: set both.")
        if self.auth_method == "bearer":
            oidc = (self.oidc_token_url, self.oidc_client_id, self.oidc_client_secret)
            if not self.bearer_token and not all(oidc):
                raise SettingsError(
                    "PI_AUTH_METHOD=bearer needs PI_BEARER_TOKEN, or PI_OIDC_TOKEN_URL + PI_OIDC_CLIENT_ID + "
                    "PI_OIDC_CLIENT_SECRET for client credentials: set one of them."
                )
            if self.oidc_token_url:
                parse_url(self.oidc_token_url, name="PI_OIDC_TOKEN_URL")
        return self


def validate_environment(environ: Mapping[str, str] | None = None) -> None:
    """Fail fast on every variable that is set but invalid, without requiring PI_WEB_API_URL.

    Called when the code location loads, so `dagster definitions validate` and the UI report a bad setting by name
    instead of the first run failing. With PI_WEB_API_URL set the whole contract is checked (auth completeness too).
    """
    env = os.environ if environ is None else environ
    if (env.get("PI_WEB_API_URL") or "").strip():
        Settings.from_env(env)
        return

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    if get("PI_AUTH_METHOD") is not None:
        parse_auth_method(get("PI_AUTH_METHOD"))
    parse_bool("PI_VERIFY_TLS", get("PI_VERIFY_TLS"), default=True)
    parse_ca_bundle(get("PI_CA_BUNDLE"))
    parse_start_date(get("OSIPI_START_DATE"))
    parse_lake_uri(get("OSIPI_LAKE_URI"))
    parse_storage_options(get("OSIPI_LAKE_STORAGE_OPTIONS"))


def parse_url(value: str, name: str = "PI_WEB_API_URL") -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(
            f"{name}={value!r} is not an http(s) URL: use e.g. https://pi.example.com/piwebapi."
        )
    return value.rstrip("/")


def parse_auth_method(value: str | None) -> AuthMethod:
    method = (value or "anonymous").lower()
    if method not in AUTH_METHODS:
        raise SettingsError(f"PI_AUTH_METHOD={value!r} is not one of {', '.join(AUTH_METHODS)}.")
    return method  # type: ignore[return-value]


def parse_bool(name: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean: use true or false.")


def parse_ca_bundle(value: str | None) -> str | None:
    if value is not None and not os.path.isfile(value):
        raise SettingsError(
            f"PI_CA_BUNDLE={value!r} does not exist: point it at a PEM file of CA certificates."
        )
    return value


def parse_list(value: str | None) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()] if value else []


def parse_start_date(value: str | None) -> date:
    if value is None:
        return DEFAULT_START_DATE
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SettingsError(
            f"OSIPI_START_DATE={value!r} is not a date: use YYYY-MM-DD, e.g. 2024-01-01."
        ) from None


def parse_lake_uri(value: str | None) -> str:
    uri = value or DEFAULT_LAKE_URI
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        return uri
    if scheme not in REMOTE_LAKE_SCHEMES:
        raise SettingsError(
            f"OSIPI_LAKE_URI={uri!r} has an unsupported scheme {scheme!r}: use a local path or one of "
            + ", ".join(f"{s}://" for s in REMOTE_LAKE_SCHEMES)
            + "."
        )
    return uri


def parse_storage_options(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"OSIPI_LAKE_STORAGE_OPTIONS is not valid JSON ({exc.msg}): use a JSON object."
        ) from None
    if not isinstance(parsed, dict):
        raise SettingsError("OSIPI_LAKE_STORAGE_OPTIONS must be a JSON object of string keys and values.")
    return {str(k): str(v) for k, v in parsed.items()}
