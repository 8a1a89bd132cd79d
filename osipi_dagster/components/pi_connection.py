"""`osipi_dagster.PIConnection`: one PI Web API per `defs/<name>/defs.yaml`, with that connection's whole PI asset
set (catalogue, AF, event frames, time series with their checks, jobs, schedules, the streaming pieces) under its
own key prefix, group, pool and resources (its spool: `stream.directory`, default `./data/spool/<name>`).

Load-time rules (so `dg check defs` fails on them): unknown fields, a secret that is not `{{ env.VAR }}`, a
referenced variable that is unset, and every contract rule of `Settings.from_dict` (URL form, auth completeness…).
Secrets reach the resource as `dg.EnvVar`, resolved at launch; they never appear in run config or the UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import ValidationError

from osipi_dagster.cli.connection import connection_lake_root, connection_spool_directory
from osipi_dagster.components.scaffold import PIConnectionScaffolder
from osipi_dagster.components.schema import ENV_REF, NAME, SCHEDULES, PIConnectionModel
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import catalogue_assets
from osipi_dagster.defs.pi.derived import build_derived_defs
from osipi_dagster.defs.pi.event_frames import event_frame_assets
from osipi_dagster.defs.pi.jobs import run_tags, site_jobs
from osipi_dagster.defs.pi.names import (
    EVENT_FRAMES_JOB,
    EVENT_FRAMES_KEY,
    POINTS_KEY,
    TIMESERIES_JOB,
    TIMESERIES_KEY,
)
from osipi_dagster.defs.pi.resources import LateDataConfig, PIWebAPIResource, QualityConfig
from osipi_dagster.defs.pi.schedules import site_schedules
from osipi_dagster.defs.pi.site import Site
from osipi_dagster.defs.pi.timeseries import timeseries_asset
from osipi_dagster.defs.quality.checks import build_quality_checks
from osipi_dagster.defs.quality.late_data import Targets, build_late_data_sensor
from osipi_dagster.defs.streaming.assets import stream_asset
from osipi_dagster.defs.streaming.checks import stream_checks
from osipi_dagster.defs.streaming.names import StreamNames
from osipi_dagster.defs.streaming.reporting import report_sensor
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.defs.streaming.sensors import landing_sensor
from osipi_dagster.lib.landing.late_data import EVENT_FRAMES, TIMESERIES
from osipi_dagster.lib.settings import Settings, SettingsError, is_secret
from osipi_dagster.lib.settings.sections import ConnectionFields, SelectionFields

SECRETS = {name for name, info in Settings.model_fields.items() if is_secret(info)}


class PIConnectionError(ValueError):
    """A PIConnection's defs.yaml is wrong: each line names the field and the fix."""


def resolve_env(attrs: Mapping[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """`{{ env.VAR }}` references replaced by their values, and the secret fields' variables; raises naming every
    literal secret and every unset variable."""
    problems: list[str] = []
    secrets: dict[str, str] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str):
            if path in SECRETS and value is not None:
                problems.append(
                    f"{path}: a secret must be an environment reference: write '{{{{ env.VAR }}}}'."
                )
            return value
        ref = ENV_REF.match(value)
        if ref is None:
            if path in SECRETS:
                problems.append(
                    f"{path}: a literal secret is not allowed: write '{{{{ env.VAR }}}}' and set VAR where the "
                    "code location runs."
                )
            elif "{{" in value:
                problems.append(f"{path}: only '{{{{ env.VAR }}}}' references are supported, got {value!r}.")
            return value
        var = ref.group(1)
        if path in SECRETS:
            secrets[path] = var
        if var not in os.environ:
            problems.append(
                f"{path}: environment variable {var} is not set: export {var} (or fix the reference)."
            )
            return None
        return os.environ[var]

    resolved = walk(dict(attrs), "")
    if problems:
        raise PIConnectionError(f"{where}:\n" + "\n".join(f"  {p}" for p in problems))
    return resolved, secrets


def describe(error: Any) -> str:
    """One schema error as `field: problem: fix`."""
    path = ".".join(map(str, error["loc"]))
    if error["type"] == "extra_forbidden":
        model: Any = PIConnectionModel
        for part in error["loc"][:-1]:
            model = model.model_fields[part].annotation
        known = ", ".join(model.model_fields)
        return f"{path}: unknown field: remove it, or use one of {known} (docs/connections.md)."
    return f"{path}: {error['msg']}."


@dg.scaffold_with(PIConnectionScaffolder)
class PIConnection(dg.Component):
    """One PI Web API connection and its PI assets, jobs and schedules."""

    def __init__(
        self, name: str, values: dict[str, Any], secrets: dict[str, str], settings: Settings
    ) -> None:
        self.name = name
        self.values = values
        self.secrets = secrets
        self.settings = settings

    @classmethod
    def get_model_cls(cls) -> type[dg.Model]:
        return PIConnectionModel

    @classmethod
    def load(cls, attributes: Any, context: dg.ComponentLoadContext) -> PIConnection:
        raw = attributes.model_dump(exclude_unset=True) if attributes is not None else {}
        return cls.from_attributes(context.path.name, raw)

    @classmethod
    def from_attributes(cls, name: str, raw: Mapping[str, Any]) -> PIConnection:
        """A connection named `name` (its defs folder) from its YAML attributes, templates unresolved; raises
        PIConnectionError naming every wrong field and its fix."""
        where = f"{name}/defs.yaml (osipi_dagster.PIConnection)"
        if not NAME.match(name):
            raise PIConnectionError(
                f"{where}: the folder name {name!r} must be lower case letters, digits, _."
            )
        try:
            PIConnectionModel.model_validate(dict(raw))
        except ValidationError as err:
            lines = [describe(e) for e in err.errors()]
            raise PIConnectionError(f"{where}:\n" + "\n".join(f"  {line}" for line in lines)) from None
        values, secrets = resolve_env(raw, where)
        unknown = set(values.get("schedules", {})) - set(SCHEDULES)
        if unknown:
            raise PIConnectionError(
                f"{where}:\n  schedules: unknown {sorted(unknown)}: use {', '.join(SCHEDULES)}."
            )
        contract = {k: v for k, v in values.items() if k in Settings.model_fields}
        try:
            settings = Settings.from_dict(contract)
        except SettingsError as err:
            raise PIConnectionError(
                f"{where}:\n" + "\n".join(f"  {line}" for line in str(err).splitlines())
            ) from None
        return cls(name, values, secrets, settings)

    def site(self) -> Site:
        v = self.values
        return Site(
            name=self.name,
            key_prefix=tuple(v.get("key_prefix") or [self.name]),
            group=v.get("group") or self.name,
            pool=v.get("pool") or f"pi_web_api_{self.name}",
            pi_key=f"{self.name}_pi",
            lake_key=f"{self.name}_lake",
            start=self.settings.start_date,
            schedules=dict(v.get("schedules") or {}),
            timezone=v.get("timezone") or "UTC",
            tag_shards=self.settings.tag_shards,
        )

    def pi_resource(self) -> PIWebAPIResource:
        fields: dict[str, Any] = {}
        for name in (*ConnectionFields.model_fields, *SelectionFields.model_fields):
            if name in self.secrets:
                fields[name] = dg.EnvVar(self.secrets[name])
            elif name in self.values:
                fields[name] = getattr(self.settings, name)
        return PIWebAPIResource(
            **fields,
            quality=QualityConfig(**self.settings.quality.model_dump()),
            late_data=LateDataConfig(**self.settings.late_data.model_dump()),
        )

    def lake_resource(self) -> LakeResource:
        # One lake root, one sub-path per connection: table names stay the same in every site's folder.
        root = connection_lake_root(self.name, self.settings.lake_uri, self.values.get("lake_path"))
        options = (
            {"storage_options_json": dg.EnvVar(self.secrets["lake_storage_options"])}
            if ("lake_storage_options" in self.secrets)
            else {}
        )
        return LakeResource(root_uri=root, **options)

    def spool_directory(self) -> str:
        """`stream.directory` when the YAML sets it, else the default spool root's sub-folder `<name>`: one
        listener, one spool per connection."""
        return connection_spool_directory(self.name, self.values.get("stream"))

    def spool_resource(self) -> SpoolResource:
        stream = self.settings.stream
        return SpoolResource(
            directory=self.spool_directory(),
            keep_landed_hours=stream.keep_landed_hours,
            min_run_interval_s=stream.min_run_interval_s,
        )

    def streaming_defs(self, site: Site) -> dg.Definitions:
        """This connection's stream asset, its checks, the report sensor and the run-per-batch sensor and job, on
        its own lake (the lander's pi_timeseries under the lake sub-path) and spool."""
        landing, landing_job = landing_sensor(site)
        return dg.Definitions(
            assets=[stream_asset(site)],
            asset_checks=stream_checks(site),
            sensors=[report_sensor(site), landing],
            jobs=[landing_job],
            resources={StreamNames.of(site).spool_key: self.spool_resource()},
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        site = self.site()
        assets = [*catalogue_assets(site), *event_frame_assets(site), timeseries_asset(site)]
        jobs = site_jobs(site)
        # Derived reads (opt-in per connection, defs/pi/derived.py) under the same prefix, group, pool, resources.
        derived = build_derived_defs(
            self.settings.derived,
            key_prefix=site.key_prefix[0] if len(site.key_prefix) == 1 else "/".join(site.key_prefix),
            group=site.group,
            pi_resource_key=site.pi_key,
            lake_resource_key=site.lake_key,
            pool=site.pool,
            points_key=site.key(POINTS_KEY),
            name_prefix=self.name,
            tags=run_tags(site),
        )
        schema_checks, freshness_checks, freshness_sensor = build_quality_checks(
            site.key_prefix, sensor_name=site.job("pi_freshness_checks_sensor"), tag_shards=site.tag_shards
        )
        late_data = build_late_data_sensor(
            site.job("pi_late_data_sensor"),
            site.pi_key,
            site.lake_key,
            Targets(
                {TIMESERIES: site.key(TIMESERIES_KEY), EVENT_FRAMES: site.key(EVENT_FRAMES_KEY)},
                {TIMESERIES: jobs[TIMESERIES_JOB], EVENT_FRAMES: jobs[EVENT_FRAMES_JOB]},
                site.tag_shards,
            ),
        )
        own = dg.Definitions(
            assets=assets,
            asset_checks=[*schema_checks, *freshness_checks],
            sensors=[freshness_sensor, late_data],
            jobs=list(jobs.values()),
            schedules=site_schedules(site, jobs),
            resources={site.pi_key: self.pi_resource(), site.lake_key: self.lake_resource()},
            metadata={
                f"osipi/connection/{self.name}/pool": site.pool,
                f"osipi/connection/{self.name}/pool_limit": self.values.get("pool_limit"),
            },
        )
        return dg.Definitions.merge(own, derived, self.streaming_defs(site))
