"""The spool resource: where the channel listener leaves sealed segments for the landing runs (OSIPI_STREAM_SPOOL).

Only the directory is configured; the listener process owns writing, Dagster only reads and marks segments landed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from osipi_dagster.defs.env import env_vars
from osipi_dagster.lib.streaming import SpoolReader

DEFAULT_SPOOL_DIR = "./data/spool"


class SpoolResource(dg.ConfigurableResource):
    """Directory of the listener's spool; landed segments are kept `keep_landed_hours` for replays, then pruned."""

    directory: str = DEFAULT_SPOOL_DIR
    keep_landed_hours: float = 24.0
    # Seconds between the starts of two landing runs: each run costs a process start-up (seconds of CPU), so a
    # longer interval trades latency for CPU (figures in docs/streaming.md). 0 = start as soon as the last ended.
    min_run_interval_s: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpoolResource:
        env = os.environ if environ is None else environ
        configured: dict[str, object] = {**env_vars({"directory": "OSIPI_STREAM_SPOOL"}, env)}
        interval = env.get("OSIPI_STREAM_MIN_RUN_INTERVAL_S", "").strip()
        if interval:
            try:
                configured["min_run_interval_s"] = float(interval)
            except ValueError:
                raise ValueError(
                    f"OSIPI_STREAM_MIN_RUN_INTERVAL_S={interval!r} is not a number of seconds (e.g. 30)"
                ) from None
        return cls(**configured)  # type: ignore[arg-type]

    def reader(self) -> SpoolReader:
        return SpoolReader(self.directory)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"spool": SpoolResource.from_env()})
