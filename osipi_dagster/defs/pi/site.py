"""One PI connection's identity in Dagster: its key prefix, group, pool, resource keys, job names and partitions.

`DEFAULT_SITE` is the environment connection with today's names (prefix `pi`, resources `pi`/`lake`); a
`PIConnection` component builds a `Site` of its own and calls the same factories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from osipi_dagster.defs.pi.names import GROUP, KEY_PREFIX, KINDS, POOL
from osipi_dagster.defs.pi.partitions import (
    START_DATE,
    TAG_SHARDS,
    daily,
    daily_partitions,
    hourly,
    hourly_partitions,
    timeseries_backfill,
    timeseries_partitions,
)


@dataclass(frozen=True)
class Site:
    """Names one connection's Dagster objects; the defaults are the environment connection's."""

    name: str = ""
    key_prefix: tuple[str, ...] = (KEY_PREFIX,)
    group: str = GROUP
    pool: str = POOL
    pi_key: str = "pi"
    lake_key: str = "lake"
    start: date = START_DATE
    schedules: dict[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    tag_shards: int = TAG_SHARDS

    @property
    def is_default(self) -> bool:
        return not self.name

    def key(self, key: dg.AssetKey) -> dg.AssetKey:
        """`key` (a default `pi/<table>` key) under this site's prefix."""
        return dg.AssetKey([*self.key_prefix, *key.path[1:]])

    def job(self, name: str) -> str:
        """A job, schedule or sensor name: unchanged for the default site, prefixed by the connection otherwise."""
        return name if self.is_default else f"{self.name}__{name}"

    def cron(self, schedule: str, default: str) -> str:
        return self.schedules.get(schedule, default)

    @property
    def hourly(self) -> dg.HourlyPartitionsDefinition:
        return hourly_partitions if self.start == START_DATE else hourly(self.start)

    @property
    def timeseries_partitions(self) -> dg.HourlyPartitionsDefinition | dg.MultiPartitionsDefinition:
        """pi_timeseries' partitions: hours, or hour × shard when the connection has tag_shards > 1."""
        return timeseries_partitions(self.hourly, self.tag_shards)

    @property
    def timeseries_backfill(self) -> dg.BackfillPolicy:
        return timeseries_backfill(self.tag_shards)

    @property
    def daily(self) -> dg.DailyPartitionsDefinition:
        return daily_partitions if self.start == START_DATE else daily(self.start)

    def asset_kwargs(self) -> dict[str, Any]:
        """What every PI asset of this site declares: its key prefix, group, kinds, pool and resource keys."""
        return {
            "key_prefix": list(self.key_prefix),
            "group_name": self.group,
            "kinds": KINDS,
            "pool": self.pool,
            "required_resource_keys": {self.pi_key, self.lake_key},
        }

    def daily_kwargs(self) -> dict[str, Any]:
        """A daily-partitioned PI asset's declarations: the common ones, daily partitions, a week per backfill run."""
        return {
            **self.asset_kwargs(),
            "partitions_def": self.daily,
            "backfill_policy": dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
        }

    def resources(self, context: dg.AssetExecutionContext) -> tuple[Any, Any]:
        """The site's (pi, lake) resources of a run."""
        return getattr(context.resources, self.pi_key), getattr(context.resources, self.lake_key)

    def check(self, spec: dg.AssetCheckSpec) -> dg.AssetCheckSpec:
        """A check spec of checks.py (on a default `pi/…` key) on this site's asset."""
        if self.is_default:
            return spec
        return dg.AssetCheckSpec(
            spec.name, asset=self.key(spec.asset_key), description=spec.description, blocking=spec.blocking
        )


DEFAULT_SITE = Site()
