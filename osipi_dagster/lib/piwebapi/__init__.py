"""PI Web API client: auth, retries, circuit breaker, completeness, and decoding to polars (no Dagster import).

Public API: `PIWebAPIClient(ClientConfig(...))` — see docs/client.md; schemas live in `schema.py`.
"""

from osipi_dagster.lib.piwebapi.auth import (
    BasicAuth,
    BearerAuth,
    KerberosAuth,
    OIDCClientCredentialsAuth,
    build_auth,
)
from osipi_dagster.lib.piwebapi.client import PIWebAPIClient
from osipi_dagster.lib.piwebapi.config import AuthConfig, ClientConfig
from osipi_dagster.lib.piwebapi.errors import (
    AuthenticationError,
    CircuitOpenError,
    NotFoundError,
    PIWebAPIError,
    ResponseError,
    TLSVerificationError,
    TooManyValuesError,
)
from osipi_dagster.lib.piwebapi.http import ClientStats
from osipi_dagster.lib.piwebapi.models import AssetDatabase, AssetServer, DataServer
from osipi_dagster.lib.piwebapi.pitime import PITimeError, parse_interval, parse_time
from osipi_dagster.lib.piwebapi.schema import (
    ATTRIBUTES_SCHEMA,
    COUNTS_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    ELEMENTS_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    POINTS_SCHEMA,
    SUMMARY_SCHEMA,
    VALUES_SCHEMA,
)

__all__ = [
    "ATTRIBUTES_SCHEMA",
    "COUNTS_SCHEMA",
    "EF_ATTRIBUTES_SCHEMA",
    "ELEMENTS_SCHEMA",
    "EVENT_FRAMES_SCHEMA",
    "POINTS_SCHEMA",
    "SUMMARY_SCHEMA",
    "VALUES_SCHEMA",
    "AssetDatabase",
    "AssetServer",
    "AuthConfig",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "CircuitOpenError",
    "ClientConfig",
    "ClientStats",
    "DataServer",
    "KerberosAuth",
    "NotFoundError",
    "OIDCClientCredentialsAuth",
    "PITimeError",
    "PIWebAPIClient",
    "PIWebAPIError",
    "ResponseError",
    "TLSVerificationError",
    "TooManyValuesError",
    "build_auth",
    "parse_interval",
    "parse_time",
]
