"""What each `table` option returns: the polars schemas of docs/tables.md, and the polars → Spark type mapping.

Time-windowed tables return the rows the Dagster assets land (landing columns included, so a Spark job can write
them into the same Delta tables); dimension tables return the client's snapshot (the SCD2 columns are a property of
how the Dagster assets merge snapshots, not of PI); interpolated and summary return the client's frames.
"""

from __future__ import annotations

import polars as pl

from osipi_dagster.lib.landing.tables import (
    AF_ATTRIBUTES_SCHEMA,
    EVENT_FRAMES_LANDED_SCHEMA,
    TIMESERIES_SCHEMA,
)
from osipi_dagster.lib.piwebapi.schema import (
    ELEMENTS_SCHEMA,
    POINTS_SCHEMA,
    SUMMARY_SCHEMA,
    VALUES_SCHEMA,
)

TABLE_SCHEMAS: dict[str, pl.Schema] = {
    "recorded": TIMESERIES_SCHEMA,
    "points": POINTS_SCHEMA,
    "af_elements": ELEMENTS_SCHEMA,
    "af_attributes": AF_ATTRIBUTES_SCHEMA,
    "event_frames": EVENT_FRAMES_LANDED_SCHEMA,
    "interpolated": VALUES_SCHEMA,
    "summary": SUMMARY_SCHEMA,
}
# `source` of rows read by the batch source is the hourly asset's (SOURCE_RECORDED); the stream's is the Dagster
# stream landing's.
SOURCE_STREAM = "stream"

_SPARK_TYPES = {
    pl.Utf8: "string",
    pl.Float64: "double",
    pl.Int32: "int",
    pl.Int64: "bigint",
    pl.Boolean: "boolean",
    pl.Date: "date",
}


def spark_type(dtype: pl.DataType) -> str:
    """The Spark SQL type of a polars column type used by our schemas."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone != "UTC":
            raise TypeError(f"only UTC datetimes map to Spark's timestamp, not {dtype}")
        return "timestamp"
    if isinstance(dtype, pl.List):
        return f"array<{spark_type(dtype.inner)}>"
    for polars_type, name in _SPARK_TYPES.items():
        if dtype == polars_type:
            return name
    raise TypeError(f"no Spark type for polars {dtype}")


def spark_ddl(schema: pl.Schema) -> str:
    """A polars schema as a Spark DDL string (`web_id string, timestamp timestamp, ...`), columns quoted."""
    return ", ".join(f"`{name}` {spark_type(dtype)}" for name, dtype in schema.items())
