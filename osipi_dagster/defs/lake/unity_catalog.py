"""Opt-in: register the lake's Delta tables in Unity Catalog (Databricks or the open-source server).

Defined only when OSIPI_UC_CATALOG is set. The job registers every PI table that exists as an EXTERNAL table
`<catalog>.<schema>.<table>` with comments and `source=osipi`; it is idempotent, so its schedule (hourly at :25,
after pi_timeseries at :10) only writes to the catalog when a table is new or its schema or comments changed.
Endpoint and token come from OSIPI_UC_URL/OSIPI_UC_TOKEN or DATABRICKS_HOST/DATABRICKS_TOKEN as EnvVars, so the
token never appears in run config, logs or the UI.
"""

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from osipi_dagster.defs.env import env_vars
from osipi_dagster.defs.lake.maintenance import MAINTAINED_TABLES
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.lib.lake.unity_catalog import RegisterResult, UCTarget, register_lake_tables
from osipi_dagster.lib.landing.tables import TABLES

# The PI tables (the assets' tables, in the maintenance job's order); the read plan's pi_read_densities is internal.
REGISTERED_TABLES = [t for t in MAINTAINED_TABLES if t in TABLES]


class UnityCatalogResource(dg.ConfigurableResource):
    """A Unity Catalog endpoint and the catalog.schema the lake's tables are registered under."""

    url: str
    catalog: str
    schema_name: str = "pi"
    token: str | None = None
    verify_tls: bool = True
    create_parents: bool = Field(default=True, description="create the catalog and schema when missing")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "UnityCatalogResource":
        env = os.environ if environ is None else environ
        target = UCTarget.from_env(env)  # validates: fails with the variable to set
        if target is None:
            raise ValueError("OSIPI_UC_CATALOG is not set: Unity Catalog registration is off")
        url_var = "OSIPI_UC_URL" if (env.get("OSIPI_UC_URL") or "").strip() else "DATABRICKS_HOST"
        token_var = "OSIPI_UC_TOKEN" if (env.get("OSIPI_UC_TOKEN") or "").strip() else "DATABRICKS_TOKEN"
        fields = {
            "url": url_var,
            "token": token_var,
            "catalog": "OSIPI_UC_CATALOG",
            "schema_name": "OSIPI_UC_SCHEMA",
        }
        return cls(verify_tls=target.verify_tls, **env_vars(fields, env))  # type: ignore[arg-type]

    def target(self) -> UCTarget:
        return UCTarget(self.url, self.catalog, self.schema_name, self.token, self.verify_tls)


class RegisterConfig(dg.Config):
    tables: list[str] = Field(default_factory=lambda: list(REGISTERED_TABLES))


@dg.op(
    description="Register the PI Delta tables in Unity Catalog as external tables (idempotent).",
    tags={"dagster/kind/unitycatalog": ""},
)
def register_unity_catalog_tables(
    context: dg.OpExecutionContext,
    config: RegisterConfig,
    lake: LakeResource,
    unity_catalog: UnityCatalogResource,
) -> list[dict[str, object]]:
    the_lake = lake.get_lake()
    unknown = sorted(set(config.tables) - set(REGISTERED_TABLES))
    if unknown:
        raise dg.Failure(f"Unknown tables {unknown}: choose from {sorted(REGISTERED_TABLES)}.")
    present = {t: the_lake.table(t).uri for t in config.tables if the_lake.table(t).exists()}
    for missing in sorted(set(config.tables) - set(present)):
        context.log.info(f"{missing}: no Delta table yet, not registered")
    results: list[RegisterResult] = register_lake_tables(
        unity_catalog.target(),
        present,
        storage_options=the_lake.storage_options,
        create_parents=unity_catalog.create_parents,
    )
    for table, result in zip(present, results, strict=True):
        context.log.info(
            f"{result.full_name}: {result.action} ({result.columns} columns at {result.storage_location})"
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey(["pi", table]),
                metadata={"unity_catalog_table": result.full_name, "unity_catalog_action": result.action},
            )
        )
    return [{"table": r.full_name, "action": r.action} for r in results]


def unity_catalog_job_and_schedule() -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """Built on demand, not at module level, so the defs loader only sees them when the feature is on."""

    @dg.job(
        description="Register the PI Delta tables in Unity Catalog (external tables, comments, source=osipi)."
    )
    def unity_catalog_job() -> None:
        register_unity_catalog_tables()

    schedule = dg.ScheduleDefinition(
        name="unity_catalog_hourly_schedule",
        job=unity_catalog_job,
        cron_schedule="25 * * * *",
        execution_timezone="UTC",
        description="Hourly at :25, after pi_timeseries (:10); a no-op unless a table is new or its schema changed.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return unity_catalog_job, schedule


@dg.definitions
def unity_catalog_defs() -> dg.Definitions:
    if not (os.environ.get("OSIPI_UC_CATALOG") or "").strip():
        return dg.Definitions()
    job, schedule = unity_catalog_job_and_schedule()
    return dg.Definitions(
        jobs=[job], schedules=[schedule], resources={"unity_catalog": UnityCatalogResource.from_env()}
    )
