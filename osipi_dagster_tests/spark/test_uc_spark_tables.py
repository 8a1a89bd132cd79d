"""Catalog tables through Spark: `saveAsTable` of a window lands once however often the window is rerun.

The Delta session catalog stands in for Unity Catalog here: the UC Spark connector is not served by the Maven
registry these machines reach. `write_window` names the table the same way (`schema.table`, on Databricks
`catalog.schema.table`) and uses only Delta's `replaceWhere`, which Databricks runs unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from osipi_dagster.databricks import job
from osipi_dagster.databricks.delta import window_condition, write_window
from osipi_dagster_tests.defs.conftest import TAG_FILTER
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.spark.conftest import LANDED_HOUR

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

START = datetime.strptime(LANDED_HOUR, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
END = START + timedelta(hours=1)
KEY = ["web_id", "timestamp", "ordinal"]


@pytest.fixture(scope="module")
def hour(spark: SparkSession, landed_lake: Path) -> DataFrame:
    """The hour the Dagster asset landed, as a Spark DataFrame read from its Delta table."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sql("CREATE SCHEMA IF NOT EXISTS pi_uc")
    return spark.read.format("delta").load(str(landed_lake / "pi_timeseries")).cache()


def shifted(df: DataFrame, hours: int) -> DataFrame:
    from pyspark.sql import functions as F

    moved = df.withColumn("timestamp", F.col("timestamp") + F.expr(f"INTERVAL {hours} HOURS"))
    return moved.withColumn("date", F.to_date("timestamp"))


def test_rerunning_a_window_leaves_one_copy(spark: SparkSession, hour: DataFrame, landed_lake: Path) -> None:
    table = "pi_uc.pi_timeseries"
    first = write_window(hour, table, column="timestamp", start=START, end=END)
    neighbour = write_window(
        shifted(hour, 1), table, column="timestamp", start=END, end=END + timedelta(hours=1)
    )
    again = write_window(hour, table, column="timestamp", start=START, end=END)

    assert first.created and not again.created
    landed = pl.read_delta(str(landed_lake / "pi_timeseries"))
    assert first.rows == again.rows == neighbour.rows == landed.height > 1000
    assert again.version == neighbour.version + 1 == first.version + 2
    stored = pl.from_arrow(spark.table(table).toArrow())
    assert stored.height == 2 * landed.height  # this hour once, the neighbour once
    in_hour = stored.filter(pl.col("timestamp") < END)
    assert in_hour.sort(KEY).equals(landed.sort(KEY))
    detail = spark.sql(f"DESCRIBE DETAIL {table}").collect()[0]
    assert (detail["format"], list(detail["partitionColumns"])) == ("delta", ["date"])


def test_rows_outside_the_window_are_refused_before_writing(spark: SparkSession, hour: DataFrame) -> None:
    table = "pi_uc.refused"
    with pytest.raises(ValueError, match="rows outside the window"):
        write_window(shifted(hour, 2), table, column="timestamp", start=START, end=END)
    assert not spark.catalog.tableExists(table)


def test_the_databricks_job_lands_what_the_dagster_asset_lands(
    spark: SparkSession, emulator: Emulator, landed_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """job.py (pattern 3, no Dagster) reads the hour with the osipi source and lands the asset's rows."""
    monkeypatch.setenv("PI_WEB_API_URL", emulator.api)
    args = ["--table", "pi_uc.job_timeseries", "--start", "2024-05-01T09:00Z", "--end", "2024-05-01T10:00Z"]
    got = job.main([*args, "--tag-filter", TAG_FILTER])

    landed = pl.read_delta(str(landed_lake / "pi_timeseries"))
    assert (got.rows, got.duplicate_keys, got.write.rows) == (landed.height, 0, landed.height)
    stored = pl.from_arrow(spark.table("pi_uc.job_timeseries").toArrow())
    assert stored.drop("ingested_at").sort(KEY).equals(landed.drop("ingested_at").sort(KEY))


def test_job_arguments() -> None:
    assert job.last_whole_hour(datetime(2024, 5, 1, 10, 7, tzinfo=UTC)) == (START, END)
    with pytest.raises(SystemExit):
        job.main(["--table", "t", "--start", "2024-05-01T09:00"])  # no zone


def test_window_condition_is_utc_and_half_open() -> None:
    condition = window_condition("timestamp", START, END)
    assert condition == (
        "`timestamp` >= TIMESTAMP'2024-05-01 09:00:00.000000+00:00' "
        "AND `timestamp` < TIMESTAMP'2024-05-01 10:00:00.000000+00:00'"
    )
    with pytest.raises(ValueError, match="no time zone"):
        window_condition("timestamp", START.replace(tzinfo=None), END)
    with pytest.raises(ValueError, match="empty window"):
        window_condition("timestamp", END, START)
