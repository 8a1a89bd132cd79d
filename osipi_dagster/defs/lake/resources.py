"""The lake resource: where the Delta tables live (OSIPI_LAKE_URI) and how to reach them (storage options).

Storage options may carry cloud keys, so they arrive only through an EnvVar holding JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from osipi_dagster.defs.env import env_vars
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
        fields = {"root_uri": "OSIPI_LAKE_URI", "storage_options_json": "OSIPI_LAKE_STORAGE_OPTIONS"}
        return cls(**env_vars(fields, environ))  # type: ignore[arg-type]

    def get_lake(self) -> Lake:
        options = {**self.storage_options, **parse_storage_options(self.storage_options_json)}
        return Lake(root_uri=parse_lake_uri(self.root_uri), storage_options=options)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource.from_env()})
