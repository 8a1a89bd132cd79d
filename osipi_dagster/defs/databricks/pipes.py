"""Opt-in: the hourly PI extraction run on Databricks through Dagster Pipes (`databricks/pi_timeseries`).

Defined only when OSIPI_DATABRICKS_TABLE is set. Each hourly partition submits a one-time Databricks run of our
entry point (osipi_dagster/databricks/pipes_extract.py) with `PipesDatabricksClient` on an existing or new
cluster, or `PipesDatabricksServerlessClient`; the script reads the hour with the `osipi` Spark source, replaces
it in the Unity Catalog table and reports logs, metadata and the two checks back. `mode="subprocess"` runs the
same script locally under `PipesSubprocessClient` (local Spark): what the tests do.

Environment: OSIPI_DATABRICKS_TABLE (catalog.schema.table), OSIPI_DATABRICKS_SCRIPT (the script's workspace,
volume or DBFS path), one of OSIPI_DATABRICKS_CLUSTER_ID / OSIPI_DATABRICKS_SERVERLESS_VOLUME (else a new cluster
from OSIPI_DATABRICKS_NEW_CLUSTER, JSON), OSIPI_DATABRICKS_WHEEL (the osipi-dagster wheel to install), and the
Databricks SDK's own DATABRICKS_HOST / DATABRICKS_TOKEN (or any SDK auth). PI credentials stay on Databricks
(cluster environment from secrets), never in Dagster.
"""

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from osipi_dagster.defs.env import env_vars
from osipi_dagster.defs.pi.partitions import hourly_partitions

ASSET_KEY = dg.AssetKey(["databricks", "pi_timeseries"])
CHECKS = ("unique_keys", "window_landed")
ENTRY_MODULE = "osipi_dagster.databricks.pipes_extract"


# Resource field -> environment variable of the opt-in Pipes extraction (README lists them; a test checks it).
DATABRICKS_ENV: dict[str, str] = {
    "table": "OSIPI_DATABRICKS_TABLE",
    "script": "OSIPI_DATABRICKS_SCRIPT",
    "cluster_id": "OSIPI_DATABRICKS_CLUSTER_ID",
    "new_cluster_json": "OSIPI_DATABRICKS_NEW_CLUSTER",
    "serverless_volume": "OSIPI_DATABRICKS_SERVERLESS_VOLUME",
    "wheel": "OSIPI_DATABRICKS_WHEEL",
}


class OsipiPipesResource(dg.ConfigurableResource):
    """Where and how the Pipes extraction runs."""

    table: str
    mode: Literal["databricks", "serverless", "subprocess"] = "databricks"
    script: str | None = Field(default=None, description="path of pipes_extract.py on Databricks")
    cluster_id: str | None = None
    new_cluster_json: str | None = None
    serverless_volume: str | None = None
    wheel: str | None = Field(default=None, description="osipi-dagster wheel (volume or workspace path)")
    tag_filter: str | None = None
    data_servers: str | None = None
    max_partitions: int | None = None
    subprocess_env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "OsipiPipesResource":
        env = os.environ if environ is None else environ
        fields = {**DATABRICKS_ENV, "tag_filter": "PI_TAG_FILTER", "data_servers": "PI_DATA_SERVERS"}
        mode = "serverless" if (env.get("OSIPI_DATABRICKS_SERVERLESS_VOLUME") or "").strip() else "databricks"
        return cls(mode=mode, **env_vars(fields, env))  # type: ignore[arg-type]

    def extras(self) -> dict[str, Any]:
        found = {
            "tag_filter": self.tag_filter,
            "data_servers": self.data_servers,
            "max_partitions": self.max_partitions,
        }
        return {"table": self.table, **{k: v for k, v in found.items() if v is not None}}

    def task(self, transport: str) -> dict[str, Any]:
        """The jobs SubmitTask (as a dict) for the Databricks modes."""
        if not self.script:
            raise dg.Failure("OSIPI_DATABRICKS_SCRIPT is not set: upload pipes_extract.py and give its path")
        task: dict[str, Any] = {
            "task_key": "osipi_extract",
            "spark_python_task": {"python_file": self.script, "parameters": ["--pipes-transport", transport]},
        }
        if self.mode == "serverless":
            task["environment_key"] = "osipi"
        elif self.cluster_id:
            task["existing_cluster_id"] = self.cluster_id
        elif self.new_cluster_json:
            task["new_cluster"] = json.loads(self.new_cluster_json)
        else:
            raise dg.Failure(
                "No Databricks compute: set OSIPI_DATABRICKS_CLUSTER_ID, OSIPI_DATABRICKS_NEW_CLUSTER (JSON) "
                "or OSIPI_DATABRICKS_SERVERLESS_VOLUME"
            )
        if self.wheel and self.mode != "serverless":
            task["libraries"] = [{"whl": self.wheel}]
        return task

    def launch(self, context: dg.AssetExecutionContext) -> dg.PipesClientCompletedInvocation:
        if self.mode == "subprocess":
            client = dg.PipesSubprocessClient(env={**os.environ, **self.subprocess_env})
            command = [sys.executable, "-m", ENTRY_MODULE, "--pipes-transport", "default"]
            return client.run(context=context, command=command, extras=self.extras())

        from dagster_databricks import PipesDatabricksClient, PipesDatabricksServerlessClient
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.service import jobs

        workspace = WorkspaceClient()  # DATABRICKS_HOST / DATABRICKS_TOKEN or any SDK auth
        if self.mode == "serverless":
            assert self.serverless_volume is not None
            environments = [
                {"environment_key": "osipi", "spec": {"client": "2", "dependencies": [self.wheel or ""]}}
            ]
            return PipesDatabricksServerlessClient(client=workspace, volume_path=self.serverless_volume).run(
                context=context,
                task=jobs.SubmitTask.from_dict(self.task("volumes")),
                extras=self.extras(),
                submit_args={"environments": [jobs.JobEnvironment.from_dict(e) for e in environments]},
            )
        return PipesDatabricksClient(client=workspace).run(
            context=context, task=jobs.SubmitTask.from_dict(self.task("dbfs")), extras=self.extras()
        )


def build_pipes_asset() -> dg.AssetsDefinition:
    """Built on demand so the defs loader sees the asset only when the feature is on."""

    @dg.asset(
        key=ASSET_KEY,
        partitions_def=hourly_partitions,
        group_name="databricks",
        kinds={"databricks", "spark", "delta"},
        check_specs=[dg.AssetCheckSpec(name, asset=ASSET_KEY) for name in CHECKS],
        description="PI recorded values of the hour, extracted on Databricks by the osipi Spark source (Pipes).",
    )
    def databricks_pi_timeseries(context: dg.AssetExecutionContext, osipi_pipes: OsipiPipesResource):
        return osipi_pipes.launch(context).get_results()

    return databricks_pi_timeseries


@dg.definitions
def databricks_defs() -> dg.Definitions:
    if not (os.environ.get("OSIPI_DATABRICKS_TABLE") or "").strip():
        return dg.Definitions()
    return dg.Definitions(
        assets=[build_pipes_asset()], resources={"osipi_pipes": OsipiPipesResource.from_env()}
    )
