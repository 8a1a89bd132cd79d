"""The PI Web API resource: one PI connection's settings as typed fields, and a closed-after-use client.

Its fields are the contract's own field lists (`osipi_dagster.lib.settings`): connection, selection, quality
thresholds and the late-data window, so the UI shows each with its description and a run may override them.
Secrets reach it only as EnvVar references, so they never appear in run config, the UI or logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg
from pydantic import Field

from osipi_dagster.defs.env import contract_values
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.settings import (
    ConnectionFields,
    LateDataSettings,
    QualityThresholds,
    SelectionFields,
    Settings,
    env_settings,
)

T = TypeVar("T")


class QualityConfig(dg.Config, QualityThresholds):
    """pi_timeseries quality thresholds (OSIPI_QUALITY_*; docs/quality.md)."""


class LateDataConfig(dg.Config, LateDataSettings):
    """What the late-data sensor re-audits (OSIPI_LATE_DATA_*; docs/quality.md)."""


class PIWebAPIResource(dg.ConfigurableResource, ConnectionFields, SelectionFields):
    """Connection, selection and data-quality settings of one PI Web API."""

    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="pi_timeseries quality thresholds"
    )
    late_data: LateDataConfig = Field(
        default_factory=LateDataConfig, description="the late-data audit window"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PIWebAPIResource:
        """Secrets and PI_WEB_API_URL as EnvVar references (resolved at launch), every other set variable as its
        typed value; unset optional variables keep their defaults, so the location loads with an empty environment."""
        return cls(**contract_values(cls, env_settings(environ)))

    def settings(self) -> Settings:
        """The validated contract; raises SettingsError naming the field, its variable and the fix."""
        values = {
            name: getattr(self, name) for name in Settings.model_fields if name in type(self).model_fields
        }
        return Settings.from_dict(values)

    def client_config(self) -> ClientConfig:
        return ClientConfig.from_settings(self.settings())

    @contextmanager
    def get_client(self) -> Iterator[PIWebAPIClient]:
        """An open client for one asset computation; its connection pool is closed on exit."""
        with PIWebAPIClient(self.client_config()) as client:
            yield client

    def read(self, read: Callable[[PIWebAPIClient], T]) -> tuple[T, int]:
        """Run `read` with a fresh client; returns its result and the number of HTTP calls it made."""
        with self.get_client() as client:
            before = client.stats.http_calls
            result = read(client)
            return result, int(client.stats.http_calls - before)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"pi": PIWebAPIResource.from_env()})
