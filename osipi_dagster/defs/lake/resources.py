"""The lake resource: where the Delta tables live (OSIPI_LAKE_URI) and how to reach them (storage options).

Storage options may carry cloud keys, so they arrive only through an EnvVar holding JSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.settings import DEFAULT_LAKE_URI, parse_lake_uri, parse_storage_options


class LakeResource(dg.ConfigurableResource):
    """Root URI of the Delta tables plus deltalake storage options."""

    root_uri: str = DEFAULT_LAKE_URI
    storage_options: dict[str, str] = Field(default_factory=dict)
    # JSON object, normally an EnvVar on OSIPI_LAKE_STORAGE_OPTIONS; merged over `storage_options`.
    storage_options_json: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeResource:
        env = os.environ if environ is None else environ
        configured: dict[str, object] = {}
        if env.get("OSIPI_LAKE_URI", "").strip():
            configured["root_uri"] = dg.EnvVar("OSIPI_LAKE_URI")
        if env.get("OSIPI_LAKE_STORAGE_OPTIONS", "").strip():
            configured["storage_options_json"] = dg.EnvVar("OSIPI_LAKE_STORAGE_OPTIONS")
        return cls(**configured)  # type: ignore[arg-type]

    def get_lake(self) -> Lake:
        options = {**self.storage_options, **parse_storage_options(self.storage_options_json)}
        return Lake(root_uri=parse_lake_uri(self.root_uri), storage_options=options)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource.from_env()})
