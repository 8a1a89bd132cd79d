"""Dagster Pipes entry point: extract one window of PI recorded values with the `osipi` Spark source and replace it
in a Delta table, reporting logs, metadata and check results back to Dagster.

The same file runs on a Databricks cluster (submitted by `PipesDatabricksClient`, `--pipes-transport dbfs`, or the
serverless client, `volumes`) and locally under `PipesSubprocessClient` (`default`). It needs
`osipi-dagster[spark]` on the cluster and no Dagster: only `dagster-pipes`.

Inputs (Pipes extras): `table` (e.g. `main.pi.pi_timeseries`), optional `tag_filter`, `data_servers` and read
options; the window is the run's partition time window. Connection settings come from the cluster's environment
(PI_WEB_API_URL, PI_AUTH_METHOD, PI_USERNAME, PI_PASSWORD... as in .env.example; on Databricks, reference secrets
in `spark_env_vars`), so no secret travels through Dagster.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesContext,
    PipesDbfsContextLoader,
    PipesDbfsMessageWriter,
    PipesEnvVarParamsLoader,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)


def open_pipes(transport: str) -> PipesContext:
    """Open Pipes with the loader/writer of the transport; params come from CLI args when Dagster passed them there
    (an existing Databricks cluster), else from the environment."""
    params = (
        PipesCliArgsParamsLoader() if "--dagster-pipes-context" in sys.argv else PipesEnvVarParamsLoader()
    )
    if transport == "dbfs":
        return open_dagster_pipes(
            context_loader=PipesDbfsContextLoader(),
            message_writer=PipesDbfsMessageWriter(),
            params_loader=params,
        )
    if transport == "volumes":
        return open_dagster_pipes(
            context_loader=PipesUnityCatalogVolumesContextLoader(),
            message_writer=PipesUnityCatalogVolumesMessageWriter(),
            params_loader=params,
        )
    return open_dagster_pipes(params_loader=params)


def run(pipes: PipesContext) -> None:
    from pyspark.sql import SparkSession

    from osipi_dagster.databricks.extract import extract_window, read_options

    extras = pipes.extras
    table = str(extras.get("table") or "")
    if not table:
        raise ValueError("Pipes extra `table` is missing: pass the target table, e.g. main.pi.pi_timeseries")
    window = pipes.partition_time_window
    if window is None:
        raise ValueError(
            "the asset is not time-partitioned: the extraction needs the run's partition time window"
        )
    start, end = (datetime.fromisoformat(window[k]) for k in ("start", "end"))

    began = time.monotonic()
    pipes.log.info(f"reading recorded values {start.isoformat()}..{end.isoformat()} into {table}")
    spark = SparkSession.builder.getOrCreate()
    got = extract_window(spark, table, start, end, read_options(extras))
    seconds = round(time.monotonic() - began, 3)
    pipes.log.info(f"{table}: {got.rows} rows of {got.tags} tags landed, Delta version {got.write.version}")
    pipes.report_asset_check(
        check_name="unique_keys",
        passed=got.duplicate_keys == 0,
        metadata={"duplicate_keys": got.duplicate_keys},
    )
    pipes.report_asset_check(
        check_name="window_landed",
        passed=got.write.rows == got.rows,
        metadata={"rows_read": got.rows, "rows_written": got.write.rows},
    )
    pipes.report_asset_materialization(
        metadata={
            "dagster/row_count": got.rows,
            "dagster/table_name": table,
            "table_created": got.write.created,
            "delta_version": got.write.version,
            "tags_with_values": got.tags,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "duration_s": seconds,
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="osipi extraction under Dagster Pipes")
    parser.add_argument("--pipes-transport", choices=("default", "dbfs", "volumes"), default="default")
    args, _ = parser.parse_known_args(argv)
    with open_pipes(args.pipes_transport) as pipes:
        run(pipes)


if __name__ == "__main__":
    main()
