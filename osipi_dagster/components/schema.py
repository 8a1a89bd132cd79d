"""The `PIConnection` YAML schema: the contract's `Settings` fields (one list, lib/settings) plus the Dagster-side
names of one connection (key prefix, group, pool, schedules, lake sub-path).

Settings fields are copied from `Settings.model_fields`, so a field added to the contract appears here and in the
generated reference (docs/connections.md) without being declared twice. Secret fields take only `{{ env.VAR }}`.
"""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from osipi_dagster.lib.settings import Settings, is_secret

ENV_REF = re.compile(r"^\s*\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SCHEDULES = ("timeseries", "catalogue", "event_frames")


class ConnectionNames(dg.Model):
    """Where one connection's objects live in Dagster and in the lake."""

    key_prefix: list[str] | None = Field(
        None, description="asset key prefix (default: [<folder name>]); tables keep their names"
    )
    group: str | None = Field(None, description="asset group in the UI (default: the folder name)")
    pool: str | None = Field(
        None,
        description="PI concurrency pool (default: pi_web_api_<folder name>), so one site cannot starve others",
    )
    pool_limit: int | None = Field(
        None,
        ge=1,
        description="steps against this PI at once across runs; set on the Dagster instance by `osipi pools apply` "
        "(no limit: the instance's default_limit)",
    )
    lake_path: str | None = Field(
        None,
        description="sub-path of this connection's tables under lake_uri (default: the folder name); one lake "
        "root, one folder per site",
    )
    schedules: dict[str, str] = Field(
        default_factory=dict,
        description="cron per schedule: timeseries (default: 10 past each hour), catalogue (15 0 * * *), "
        "event_frames (30 0 * * *)",
    )
    timezone: str = Field("UTC", description="time zone of the schedules' crons (partitions stay UTC)")


def _settings_field(name: str, info: FieldInfo) -> tuple[Any, FieldInfo]:
    copied = FieldInfo.merge_field_infos(info)
    if is_secret(info):
        # A secret is a reference, never a value: the annotation is a string (validated as `{{ env.VAR }}`).
        return (str | None, Field(None, description=f"{info.description} — only as '{{{{ env.VAR }}}}'"))
    return (info.annotation, copied)


PIConnectionModel: type[dg.Model] = create_model(  # type: ignore[call-overload]
    "PIConnectionModel",
    __base__=ConnectionNames,
    __doc__="One PI Web API connection: the configuration contract's fields plus its Dagster names.",
    **{name: _settings_field(name, info) for name, info in Settings.model_fields.items()},
)
