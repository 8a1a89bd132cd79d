"""One connection's streaming names: the stream asset's key and group, the sensor and job names, the resource keys.

`StreamNames()` is the environment connection's (today's names: `pi/pi_timeseries_stream`, group `streaming`,
resources `lake`/`pi`/`spool`); `StreamNames.of(site)` derives a `PIConnection`'s from its `Site` (defs/pi/site.py,
taken by shape so this folder does not import pi's wiring): `<prefix>/pi_timeseries_stream` in the site's group,
`<name>__pi_stream_report_sensor`, resources `<name>_lake`, `<name>_pi`, `<name>_spool`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import dagster as dg

STREAM_ASSET = "pi_timeseries_stream"
STREAM_KEY = dg.AssetKey(["pi", STREAM_ASSET])
STREAM_GROUP = "streaming"


class SiteLike(Protocol):
    """What the streaming factories read of a connection's `Site`."""

    @property
    def name(self) -> str: ...
    @property
    def key_prefix(self) -> tuple[str, ...]: ...
    @property
    def group(self) -> str: ...
    @property
    def pi_key(self) -> str: ...
    @property
    def lake_key(self) -> str: ...


@dataclass(frozen=True)
class StreamNames:
    """Names of one connection's streaming objects; the defaults are the environment connection's."""

    connection: str = ""
    key: dg.AssetKey = STREAM_KEY
    group: str = STREAM_GROUP
    pi_key: str = "pi"
    lake_key: str = "lake"
    spool_key: str = "spool"

    @classmethod
    def of(cls, site: SiteLike | None) -> StreamNames:
        if site is None or not site.name:
            return cls()
        return cls(
            connection=site.name,
            key=dg.AssetKey([*site.key_prefix, STREAM_ASSET]),
            group=site.group,
            pi_key=site.pi_key,
            lake_key=site.lake_key,
            spool_key=f"{site.name}_spool",
        )

    def named(self, name: str) -> str:
        """A sensor or job name: unchanged for the environment connection, `<connection>__<name>` otherwise."""
        return f"{self.connection}__{name}" if self.connection else name
