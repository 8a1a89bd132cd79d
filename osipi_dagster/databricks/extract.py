"""One window of PI recorded values, read with the `osipi` Spark source and replaced in a Delta table.

Shared by the Dagster Pipes entry point (pipes_extract.py) and the plain Databricks job (job.py), so both land
the same rows the same way. Connection settings come from the environment contract (PI_WEB_API_URL, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from osipi_dagster.databricks.delta import WindowWrite, write_window

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Read options a caller may pass through as they are.
PASS_THROUGH = (
    "tag_filter",
    "data_servers",
    "values_per_partition",
    "max_partitions",
    "sizing",
    "max_concurrency",
)


@dataclass(frozen=True)
class Extracted:
    rows: int
    tags: int
    duplicate_keys: int
    write: WindowWrite


def read_options(extra: Mapping[str, object], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`osipi` options: connection settings from the environment contract, then the pass-through values."""
    from osipi_dagster.spark.options import CONNECTION_OPTIONS

    env = os.environ if environ is None else environ
    options = {opt: env[var] for opt, var in CONNECTION_OPTIONS.items() if (env.get(var) or "").strip()}
    options.update({k: str(extra[k]) for k in PASS_THROUGH if extra.get(k) not in (None, "")})
    return options


def extract_window(
    spark: SparkSession, table: str, start: datetime, end: datetime, options: Mapping[str, str]
) -> Extracted:
    """Read [start, end) of recorded values and replace that window of `table`; returns counts and the commit."""
    from osipi_dagster.spark import register

    spark.conf.set("spark.sql.session.timeZone", "UTC")
    register(spark)
    df = (
        spark.read.format("osipi")
        .options(**options, table="recorded", start=start.isoformat(), end=end.isoformat())
        .load()
        .cache()
    )
    try:
        stats = df.selectExpr(
            "count(*) AS rows",
            "count(DISTINCT web_id) AS tags",
            "count(DISTINCT web_id, timestamp, ordinal) AS keys",
        ).collect()[0]
        written = write_window(df, table, column="timestamp", start=start, end=end)
    finally:
        df.unpersist()
    rows = int(stats["rows"])
    return Extracted(
        rows=rows, tags=int(stats["tags"]), duplicate_keys=rows - int(stats["keys"]), write=written
    )
