"""The `osipi` PySpark Python Data Source: `spark.read.format("osipi")` and `spark.readStream.format("osipi")`.

```python
from osipi_dagster.spark import register
register(spark)
df = (spark.read.format("osipi").option("pi_web_api_url", url).option("tag_filter", "U1*")
      .option("start", "*-1h").option("end", "*").load())
```
Options are listed in options.py and docs/databricks.md. Partitions are planned on the driver (work.py); each
executor reads its partition with its own client and yields Arrow batches of exactly the table's schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.spark.options import OptionError, SourceOptions, parse_options
from osipi_dagster.spark.tables import TABLE_SCHEMAS, spark_ddl, spark_type
from osipi_dagster.spark.work import Work, plan

log = logging.getLogger(__name__)
NAME = "osipi"


class OSIPIPartition(InputPartition):
    """One input partition: an index and the work it reads (no secrets; the reader holds the settings)."""

    def __init__(self, index: int, work: Any) -> None:
        self.index = index
        self.work = work

    def __repr__(self) -> str:
        return f"OSIPIPartition({self.index}, {self.work.table}, ~{self.work.weight:,.0f} values)"


class OSIPIDataSource(DataSource):
    """Reads PI Web API tables (recorded values, points, AF, event frames, interpolated, summaries) and streams
    recorded values; see docs/databricks.md, "The osipi data source"."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return spark_ddl(TABLE_SCHEMAS[parse_options(self.options).table])

    def reader(self, schema: StructType) -> DataSourceReader:
        opts = parse_options(self.options)
        check_schema(schema, opts.table)
        return OSIPIBatchReader(opts, schema)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        from osipi_dagster.spark.stream import OSIPIStreamReader

        opts = parse_options(self.options, streaming=True)
        check_schema(schema, opts.table)
        return OSIPIStreamReader(opts, schema)


def check_schema(schema: StructType, table: str) -> None:
    """A schema given with .schema(...) must be the table's own: the source returns exactly that."""
    expected = TABLE_SCHEMAS[table]
    got = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    want = [(name, spark_type(dtype)) for name, dtype in expected.items()]
    if got != want:
        raise OptionError(
            f"osipi: table={table} has the fixed schema {spark_ddl(expected)}; drop .schema(...) or pass exactly it."
        )


def arrow_batches(frames: Iterator[pl.DataFrame], schema: StructType) -> Iterator[pa.RecordBatch]:
    """polars frames → Arrow record batches of exactly the Arrow schema Spark expects for `schema`."""
    from pyspark.sql.pandas.types import to_arrow_schema

    target = to_arrow_schema(schema, timezone="UTC")
    for frame in frames:
        yield from frame.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(target).to_batches()


def read_work(opts: SourceOptions, schema: StructType, partition: OSIPIPartition) -> Iterator[pa.RecordBatch]:
    """Executor side: read one partition with a client of its own and log what it cost."""
    started = time.perf_counter()
    rows = 0
    with PIWebAPIClient(opts.client_config()) as client:
        for batch in arrow_batches(partition.work.frames(client), schema):
            rows += batch.num_rows
            yield batch
        log.info(
            "osipi %s partition %d: %d rows, %d HTTP calls, %.2f s",
            partition.work.table,
            partition.index,
            rows,
            client.stats.http_calls,
            time.perf_counter() - started,
        )


class OSIPIBatchReader(DataSourceReader):
    def __init__(self, opts: SourceOptions, schema: StructType) -> None:
        self.opts = opts
        self.schema = schema

    def partitions(self) -> list[InputPartition]:
        with PIWebAPIClient(self.opts.client_config()) as client:
            works: list[Work] = plan(client, self.opts)
        return [OSIPIPartition(i, w) for i, w in enumerate(works)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, OSIPIPartition)
        return read_work(self.opts, self.schema, partition)


def register(spark: SparkSession) -> None:
    """Make `format("osipi")` available in this Spark session."""
    spark.dataSource.register(OSIPIDataSource)
