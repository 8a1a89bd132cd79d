"""Typed deltalake storage options of the lake's object store: the fields of dagster-deltalake's configs.

The same classes, fields, types and defaults as `dagster_deltalake.LocalConfig`/`S3Config`/`AzureConfig`/
`GcsConfig` and `dagster_deltalake.config.ClientConfig` (so the UI and run config keep their shape), declared here
because importing `dagster_deltalake` runs its I/O manager's imports (pyarrow.dataset, pandas): about 0.3 s of CPU
at every run's start-up for five plain config classes. A test compares the fields with dagster-deltalake's.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg


class LocalConfig(dg.Config):
    """Storage configuration for local object store."""

    provider: Literal["local"] = "local"


class AzureConfig(dg.Config):
    """Storage configuration for Microsoft Azure Blob or ADLS Gen 2 object store."""

    provider: Literal["azure"] = "azure"
    account_name: str
    client_id: str | None = None
    client_secret: str | None = None
    tenant_id: str | None = None
    federated_token_file: str | None = None
    account_key: str | None = None
    sas_key: str | None = None
    token: str | None = None
    use_azure_cli: bool | None = None
    use_fabric_endpoint: bool | None = None
    msi_resource_id: str | None = None
    msi_endpoint: str | None = None
    container_name: str | None = None


class S3Config(dg.Config):
    """Storage configuration for Amazon Web Services (AWS) S3 object store."""

    provider: Literal["s3"] = "s3"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    bucket: str | None = None
    endpoint: str | None = None
    token: str | None = None
    imdsv1_fallback: bool = False
    virtual_hosted_style_request: str | None = None
    unsigned_payload: bool | None = None
    checksum: str | None = None
    metadata_endpoint: str | None = None
    container_credentials_relative_uri: str | None = None
    copy_if_not_exists: str | None = None
    allow_unsafe_rename: bool | None = None


class GcsConfig(dg.Config):
    """Storage configuration for Google Cloud Storage object store."""

    provider: Literal["gcs"] = "gcs"
    service_account: str | None = None
    service_account_key: str | None = None
    bucket: str | None = None
    application_credentials: str | None = None


class ClientConfig(dg.Config):
    """Configuration for http client interacting with storage APIs."""

    allow_http: bool | None = None
    allow_invalid_certificates: bool | None = None
    connect_timeout: int | None = None
    default_content_type: str | None = None
    http1_only: bool | None = None
    http2_keep_alive_interval: int | None = None
    http2_keep_alive_timeout: int | None = None
    http2_keep_alive_while_idle: int | None = None
    http2_only: bool | None = None
    pool_idle_timeout: int | None = None
    pool_max_idle_per_host: int | None = None
    proxy_url: str | None = None
    timeout: str | None = None
    user_agent: str | None = None


STORAGE_CONFIGS: dict[str, type[dg.Config]] = {
    "local": LocalConfig,
    "s3": S3Config,
    "azure": AzureConfig,
    "gcs": GcsConfig,
}
