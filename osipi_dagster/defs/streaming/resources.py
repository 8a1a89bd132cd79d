"""The spool resource: where the channel listener leaves sealed segments for the landing runs (OSIPI_STREAM_SPOOL).

Only the directory and the pacing are configured (the contract's `StreamSettings`); the listener process owns
writing, Dagster only reads and marks segments landed.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from osipi_dagster.defs.env import contract_values
from osipi_dagster.lib.settings import StreamSettings, env_settings
from osipi_dagster.lib.streaming import SpoolReader


class SpoolResource(dg.ConfigurableResource, StreamSettings):
    """Directory of the listener's spool; landed segments are kept `keep_landed_hours` for replays, then pruned."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpoolResource:
        return cls(**contract_values(cls, env_settings(environ).get("stream") or {}))

    def reader(self) -> SpoolReader:
        return SpoolReader(self.directory)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"spool": SpoolResource.from_env()})
