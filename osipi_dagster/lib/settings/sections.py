"""The field lists of one PI connection: connection, selection, lake and streaming settings.

Plain typed fields, no validation: `Settings` (model.py) validates them, and Dagster resources inherit the same lists
(their secrets are EnvVar references until a run resolves them, so nothing here may look at a value).
"""

from __future__ import annotations

from osipi_dagster.lib.lake.lake import DEFAULT_ROOT
from osipi_dagster.lib.piwebapi.config import AuthMethod
from osipi_dagster.lib.settings.fields import SettingsFields, setting

PI_URL_EXAMPLE = "https://pi.example.com/piwebapi"


class ConnectionFields(SettingsFields):
    """Where the PI Web API is, how to authenticate and trust it, and how hard to use it."""

    pi_web_api_url: str = setting(
        doc="base URL of the PI Web API", env="PI_WEB_API_URL", example=PI_URL_EXAMPLE
    )
    auth_method: AuthMethod = setting(
        "anonymous", doc="anonymous | basic | kerberos | bearer", env="PI_AUTH_METHOD"
    )
    username: str | None = setting(None, doc="user for basic auth (DOMAIN\\user is fine)", env="PI_USERNAME")
    password: str | None = setting(None, doc="password for basic auth", env="PI_PASSWORD", secret=True)
    bearer_token: str | None = setting(
        None,
        doc="static bearer token (bearer auth), or use the OIDC variables",
        env="PI_BEARER_TOKEN",
        secret=True,
    )
    oidc_token_url: str | None = setting(
        None, doc="OIDC token endpoint for client-credentials (bearer auth)", env="PI_OIDC_TOKEN_URL"
    )
    oidc_client_id: str | None = setting(None, doc="OIDC client id", env="PI_OIDC_CLIENT_ID")
    oidc_client_secret: str | None = setting(
        None, doc="OIDC client secret", env="PI_OIDC_CLIENT_SECRET", secret=True
    )
    oidc_scope: str | None = setting(None, doc="optional OIDC scope", env="PI_OIDC_SCOPE")
    verify_tls: bool = setting(True, doc="verify TLS certificates (true | false)", env="PI_VERIFY_TLS")
    ca_bundle: str | None = setting(None, doc="path to a PEM CA bundle for a private PKI", env="PI_CA_BUNDLE")
    timeout_s: float = setting(30.0, doc="seconds one HTTP request may take", ge=0.1)
    max_concurrency: int = setting(8, doc="parallel HTTP calls to this PI Web API at most", ge=1)
    max_retries: int = setting(5, doc="retries of a failed HTTP call (after the first attempt)", ge=0)


class SelectionFields(SettingsFields):
    """What to read from that PI Web API."""

    data_servers: list[str] = setting(
        doc="comma-separated data server names (empty: all)", env="PI_DATA_SERVERS", default_factory=list
    )
    tag_filter: str = setting("*", doc="PI name filter for tags", env="PI_TAG_FILTER")
    af_databases: list[str] = setting(
        doc="comma-separated AF database paths like \\\\AFSERVER\\Database (empty: all)",
        env="PI_AF_DATABASES",
        default_factory=list,
    )


class LakeFields(SettingsFields):
    """Where the Delta tables live."""

    lake_uri: str = setting(
        DEFAULT_ROOT,
        doc="root of the Delta tables: a path, or an s3://, abfss://, gs:// URI",
        env="OSIPI_LAKE_URI",
    )
    lake_storage_options: dict[str, str] = setting(
        doc="JSON object of deltalake storage options for remote lakes (keys/regions)",
        env="OSIPI_LAKE_STORAGE_OPTIONS",
        secret=True,
        default_factory=dict,
    )


class StreamSettings(SettingsFields):
    """The streaming spool (docs/streaming.md): where the listener leaves segments and how often they land."""

    directory: str = setting(
        "./data/spool", doc="spool directory of the channel listener", env="OSIPI_STREAM_SPOOL"
    )
    keep_landed_hours: float = setting(24.0, doc="hours landed segments are kept for replays", ge=0)
    # Each landing run costs a process start-up (seconds of CPU): a longer interval trades latency for CPU.
    min_run_interval_s: float = setting(
        0.0,
        doc="seconds between the starts of two landing runs (0 = as soon as the last ended)",
        env="OSIPI_STREAM_MIN_RUN_INTERVAL_S",
        ge=0,
    )
