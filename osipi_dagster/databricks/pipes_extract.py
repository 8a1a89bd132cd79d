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
import os
import sys
import time
from collections.abc import Mapping
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

# Extras that become `osipi` read options as they are.
PASS_THROUGH = (
    "tag_filter",
    "data_servers",
    "values_per_partition",
    "max_partitions",
    "sizing",
    "max_concurrency",
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


def read_options(extras: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, str]:
    """`osipi` options: connection settings from the environment contract, then the pass-through extras."""
    from osipi_dagster.spark.options import CONNECTION_OPTIONS

    options = {
        opt: environ[var] for opt, var in CONNECTION_OPTIONS.items() if (environ.get(var) or "").strip()
    }
    options.update({k: str(extras[k]) for k in PASS_THROUGH if extras.get(k) not in (None, "")})
    return options


def run(pipes: PipesContext) -> None:
    from pyspark.sql import SparkSession

    from osipi_dagster.databricks.delta import write_window
    from osipi_dagster.spark import register

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
    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    register(spark)
    options = read_options(extras, os.environ)
    pipes.log.info(f"reading recorded values {start.isoformat()}..{end.isoformat()} into {table}")
    df = (
        spark.read.format("osipi")
        .options(**options, table="recorded", start=start.isoformat(), end=end.isoformat())
        .load()
    )
    df = df.cache()
    try:
        stats = df.selectExpr(
            "count(*) AS rows",
            "count(DISTINCT web_id) AS tags",
            "count(DISTINCT web_id, timestamp, ordinal) AS keys",
        ).collect()[0]
        rows, tags, duplicates = int(stats["rows"]), int(stats["tags"]), int(stats["rows"] - stats["keys"])
        result = write_window(df, table, column="timestamp", start=start, end=end)
    finally:
        df.unpersist()
    seconds = round(time.monotonic() - began, 3)
    pipes.log.info(f"{table}: {rows} rows of {tags} tags landed, Delta version {result.version}")
    pipes.report_asset_check(
        check_name="unique_keys",
        passed=duplicates == 0,
        metadata={"duplicate_keys": duplicates},
    )
    pipes.report_asset_check(
        check_name="window_landed",
        passed=result.rows == rows,
        metadata={"rows_read": rows, "rows_written": result.rows},
    )
    pipes.report_asset_materialization(
        metadata={
            "dagster/row_count": rows,
            "dagster/table_name": table,
            "table_created": result.created,
            "delta_version": result.version,
            "tags_with_values": tags,
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
