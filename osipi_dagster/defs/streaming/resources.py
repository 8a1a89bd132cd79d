"""The spool resource: where the channel listener leaves sealed segments for the landing runs (OSIPI_STREAM_SPOOL).

Only the directory is configured; the listener process owns writing, Dagster only reads and marks segments landed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from osipi_dagster.lib.streaming import SpoolReader

DEFAULT_SPOOL_DIR = "./data/spool"


class SpoolResource(dg.ConfigurableResource):
    """Directory of the listener's spool; landed segments are kept `keep_landed_hours` for replays, then pruned."""

    directory: str = DEFAULT_SPOOL_DIR
    keep_landed_hours: float = 24.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpoolResource:
        env = os.environ if environ is None else environ
        if env.get("OSIPI_STREAM_SPOOL", "").strip():
            return cls(directory=dg.EnvVar("OSIPI_STREAM_SPOOL"))  # type: ignore[arg-type]
        return cls()

    def reader(self) -> SpoolReader:
        return SpoolReader(self.directory)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"spool": SpoolResource.from_env()})
