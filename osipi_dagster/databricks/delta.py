"""Write one time window of a PI table into a catalog table through Spark, idempotently.

`write_window` replaces exactly the rows with `start <= column < end` (Delta `replaceWhere`) in one commit, so a
rerun of the same window leaves one copy and neighbouring windows are untouched, the same contract as the
delta-rs `replace_window` of the Dagster path. The table is created on first write, partitioned by `date`.
The name may be `catalog.schema.table` (Unity Catalog on Databricks) or `schema.table` (the session catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class WindowWrite:
    """What a window write did: `rows` is the commit's numOutputRows, `version` the Delta version it made."""

    table: str
    created: bool
    rows: int
    version: int


def _literal(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"window bound {moment!r} has no time zone: pass an aware UTC datetime")
    return "TIMESTAMP'" + moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00'"


def window_condition(column: str, start: datetime, end: datetime) -> str:
    """The SQL predicate of the half-open window [start, end) on `column`."""
    low, high = _literal(start), _literal(end)
    if end <= start:
        raise ValueError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
    return f"`{column}` >= {low} AND `{column}` < {high}"


def write_window(
    df: DataFrame,
    table: str,
    *,
    column: str,
    start: datetime,
    end: datetime,
    partition_by: tuple[str, ...] = ("date",),
) -> WindowWrite:
    """Replace the window's rows of `table` by `df` (creating the table on first use); returns what happened."""
    spark = df.sparkSession
    condition = window_condition(column, start, end)
    outside = df.filter(f"NOT ({condition}) OR `{column}` IS NULL").limit(1).count()
    if outside:
        raise ValueError(f"rows outside the window {condition} would be written to {table}; nothing written")
    created = not spark.catalog.tableExists(table)
    writer = df.write.format("delta")
    if created:
        writer.partitionBy(*partition_by).saveAsTable(table)
    else:
        writer.mode("overwrite").option("replaceWhere", condition).saveAsTable(table)
    last = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]
    rows = int((last["operationMetrics"] or {}).get("numOutputRows", -1))
    return WindowWrite(table=table, created=created, rows=rows, version=int(last["version"]))
