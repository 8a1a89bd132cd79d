"""The lake resource: where the Delta tables live and how to reach them.

Storage is typed with dagster-deltalake's configs (`LocalConfig`, `S3Config`, `AzureConfig`, `GcsConfig`, plus its
HTTP `ClientConfig`; declared in storage.py with the same fields, and dagster-deltalake's own instances are accepted),
so the UI shows a provider and its fields; their secrets belong in EnvVar references. Options
those configs do not model (S3 locking provider, conditional puts) go in `storage_options`; the environment's JSON
(OSIPI_LAKE_STORAGE_OPTIONS, which may carry keys) arrives only through an EnvVar and is merged last.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

import dagster as dg
from pydantic import BaseModel, Field, field_validator

from osipi_dagster.defs.lake.storage import STORAGE_CONFIGS, AzureConfig, GcsConfig, LocalConfig, S3Config
from osipi_dagster.defs.lake.storage import ClientConfig as DeltaClientConfig
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.settings import LakeFields, SettingsError, check_lake_uri, env_of, env_settings
from osipi_dagster.lib.settings.fields import parse_env_value

URI_FIELD = LakeFields.model_fields["lake_uri"]
OPTIONS_FIELD = LakeFields.model_fields["lake_storage_options"]
OPTIONS_VAR = env_of(OPTIONS_FIELD) or ""
# The lake root's URI schemes each typed storage config serves.
PROVIDER_SCHEMES = {
    "s3": {"s3", "s3a"},
    "azure": {"abfs", "abfss", "az", "adl", "azure"},
    "gcs": {"gs", "gcs"},
}


def as_options(config: dg.Config) -> dict[str, str]:
    """A dagster-deltalake config as deltalake storage options (its own `str_dict()`, without the deprecated
    pydantic v1 call): unset fields left out, values as strings."""
    return {k: str(v) for k, v in config.model_dump().items() if v is not None}


class LakeResource(dg.ConfigurableResource):
    """Root URI of the Delta tables plus deltalake storage options (typed, extra, and the environment's JSON)."""

    root_uri: str = Field(URI_FIELD.default, description=URI_FIELD.description)
    storage: S3Config | AzureConfig | GcsConfig | LocalConfig = Field(
        default_factory=LocalConfig,
        discriminator="provider",
        description="typed deltalake storage options of the root's object store (local: none)",
    )
    client_options: DeltaClientConfig = Field(
        default_factory=DeltaClientConfig, description="HTTP client options of the object store"
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="further deltalake storage options, e.g. AWS_S3_LOCKING_PROVIDER"
    )
    # JSON object, normally an EnvVar on OSIPI_LAKE_STORAGE_OPTIONS; merged over everything else.
    storage_options_json: str | None = Field(None, description=f"{OPTIONS_FIELD.description} ({OPTIONS_VAR})")

    @field_validator("storage", "client_options", mode="before")
    @classmethod
    def _foreign_config(cls, value: object) -> object:
        """dagster-deltalake's own config instances (the same fields) are taken as their values."""
        if isinstance(value, BaseModel) and not isinstance(
            value, (*STORAGE_CONFIGS.values(), DeltaClientConfig)
        ):
            return value.model_dump()
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeResource:
        values = env_settings(environ)
        configured: dict[str, object] = {}
        if "lake_uri" in values:
            configured["root_uri"] = values["lake_uri"]
        if "lake_storage_options" in values:
            configured["storage_options_json"] = dg.EnvVar(OPTIONS_VAR)
        return cls(**configured)  # type: ignore[arg-type]

    def options(self) -> dict[str, str]:
        """Every storage option, later sources winning: typed configs, `storage_options`, the environment's JSON."""
        typed = {k: v for k, v in as_options(self.storage).items() if k != "provider"}
        from_json = (
            parse_env_value(OPTIONS_VAR, self.storage_options_json, OPTIONS_FIELD, SettingsError)
            if self.storage_options_json
            else {}
        )
        return {**typed, **as_options(self.client_options), **self.storage_options, **from_json}

    def get_lake(self) -> Lake:
        check_lake_uri(self.root_uri, f"root_uri ({env_of(URI_FIELD)})")
        scheme = urlparse(self.root_uri).scheme
        wanted = PROVIDER_SCHEMES.get(self.storage.provider)
        if wanted is not None and scheme not in wanted:
            raise SettingsError(
                f"lake storage is {self.storage.provider} but root_uri={self.root_uri!r} is not a "
                f"{'/'.join(sorted(wanted))} URI: set root_uri to the bucket or container of that provider."
            )
        return Lake(root_uri=self.root_uri, storage_options=self.options())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource.from_env()})
