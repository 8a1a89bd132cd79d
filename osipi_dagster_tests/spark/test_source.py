"""The `osipi` Spark data source (batch) in local Spark against mock_pi: same rows as the Dagster asset, exact
schemas, partitions sized and capped, options checked, secrets kept out of plans and logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from osipi_dagster.lib.landing import tables as landed
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import POINTS_SCHEMA, SUMMARY_SCHEMA, UTC_US, VALUES_SCHEMA
from osipi_dagster.spark import register, tables
from osipi_dagster.spark.options import OptionError, parse_options
from osipi_dagster.spark.work import plan
from osipi_dagster_tests.defs.conftest import TAG_FILTER, read_table
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.spark.conftest import LANDED_HOUR

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession

START = datetime.strptime(LANDED_HOUR, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture(scope="module")
def osipi(spark: SparkSession) -> SparkSession:
    register(spark)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def reader(spark: SparkSession, api: str, **options: str) -> DataFrameReader:
    r = spark.read.format("osipi").option("pi_web_api_url", api).option("tag_filter", TAG_FILTER)
    for key, value in options.items():
        r = r.option(key, value)
    return r


def to_polars(df: DataFrame) -> pl.DataFrame:
    return pl.from_arrow(df.toArrow())  # type: ignore[return-value]


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("ingested_at").sort("web_id", "timestamp", "ordinal")


def test_schemas_are_the_assets_landed_schemas() -> None:
    assert tables.TABLE_SCHEMAS["recorded"] is landed.TIMESERIES_SCHEMA
    assert tables.TABLE_SCHEMAS["af_attributes"] is landed.AF_ATTRIBUTES_SCHEMA
    assert tables.TABLE_SCHEMAS["event_frames"] is landed.EVENT_FRAMES_LANDED_SCHEMA
    assert (
        tables.spark_ddl(pl.Schema({"a": pl.List(pl.Utf8), "t": UTC_US}))
        == "`a` array<string>, `t` timestamp"
    )


def test_recorded_rows_equal_the_dagster_asset(
    osipi: SparkSession, emulator: Emulator, landed_lake: Path
) -> None:
    landed = canonical(read_table(landed_lake, "pi_timeseries"))
    assert landed.height > 1000
    window = {"start": START.isoformat(), "end": END.isoformat()}

    # Default sizing: the hour of 11 tags is one call's worth, hence one partition.
    df = reader(osipi, emulator.api, **window).load()
    got = to_polars(df)
    assert got.schema == tables.TIMESERIES_SCHEMA
    assert canonical(got).equals(landed)
    assert got["ingested_at"].n_unique() == 1 and set(got["source"]) == {"recorded"}

    # Small slices: busy tags are cut in time, quiet ones packed, dealt onto 3 partitions; same rows.
    fine = reader(osipi, emulator.api, **window, values_per_partition="200", max_partitions="3").load()
    assert fine.rdd.getNumPartitions() == 3
    assert canonical(to_polars(fine)).equals(landed)

    # Sizing by tag count (no Count call): two even shards; same rows.
    even = reader(osipi, emulator.api, **window, sizing="tags", max_partitions="2").load()
    assert even.rdd.getNumPartitions() == 2
    assert canonical(to_polars(even)).equals(landed)


def test_spark_schema_is_exactly_the_table(osipi: SparkSession, emulator: Emulator) -> None:
    df = reader(osipi, emulator.api, start="*-1h").load()
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
        (name, tables.spark_type(dtype)) for name, dtype in tables.TIMESERIES_SCHEMA.items()
    ]
    with pytest.raises(Exception, match="has the fixed schema"):
        reader(osipi, emulator.api, start="*-1h").schema("web_id string").load().collect()


def client_for(emulator: Emulator) -> PIWebAPIClient:
    return PIWebAPIClient(ClientConfig(base_url=emulator.api))


def test_other_tables_equal_the_clients_frames(osipi: SparkSession, emulator: Emulator) -> None:
    window = {"start": START.isoformat(), "end": END.isoformat()}
    with client_for(emulator) as pi:
        servers = pi.data_servers()
        points = pl.concat([p for s in servers for p in pi.iter_points(s, TAG_FILTER)])
        ids = points["web_id"].to_list()
        databases = [db for s in pi.asset_servers() for db in pi.asset_databases(s)]
        elements = pl.concat([p for db in databases for p in pi.iter_elements(db)])
        interpolated = pi.interpolated(ids, START, END, "10m")
        summary = pi.summary(ids, START, END, ("Average", "Count"), "15m", calculation_basis="EventWeighted")
        day = datetime(2024, 4, 30, tzinfo=UTC)
        frames = pl.concat(
            [f for db in databases for f in pi.iter_event_frames(db, day, day + timedelta(days=1))]
        )

    df = reader(osipi, emulator.api, table="points", max_partitions="1").load()
    assert df.rdd.getNumPartitions() == 1  # two data servers, one partition under the cap
    got = to_polars(df)
    assert got.schema == POINTS_SCHEMA
    assert got.sort("web_id").equals(points.sort("web_id"))

    got = to_polars(reader(osipi, emulator.api, table="af_elements").load())
    assert got.sort("web_id").equals(elements.sort("web_id"))

    got = to_polars(reader(osipi, emulator.api, table="af_attributes", max_partitions="2").load())
    assert got.schema == tables.AF_ATTRIBUTES_SCHEMA and got.height > elements.height
    assert set(got["element_web_id"]) <= set(elements["web_id"])
    owner = dict(elements.select("web_id", "database").iter_rows())
    assert all(owner[e] == d for e, d in got.select("element_web_id", "database").iter_rows())

    got = to_polars(reader(osipi, emulator.api, table="interpolated", interval="10m", **window).load())
    assert got.schema == VALUES_SCHEMA and got.height == len(ids) * 7
    assert got.sort("web_id", "timestamp").equals(interpolated.sort("web_id", "timestamp"))

    got = to_polars(
        reader(
            osipi,
            emulator.api,
            table="summary",
            summary_types="average,COUNT",
            summary_duration="15m",
            calculation_basis="eventweighted",
            **window,
        ).load()
    )
    assert got.schema == SUMMARY_SCHEMA and got.height == len(ids) * 2 * 4
    key = ["web_id", "summary_type", "timestamp"]
    assert got.sort(key).equals(summary.sort(key))

    # Event frames of 2024-04-30 as the daily asset keeps them: those that start in the day, once each.
    # Three UTC days × the AF databases, dealt onto at most two partitions.
    frames_df = reader(
        osipi,
        emulator.api,
        table="event_frames",
        start="2024-04-29T12:00:00Z",
        end="2024-05-01",
        max_partitions="2",
    ).load()
    assert frames_df.rdd.getNumPartitions() == 2
    got = to_polars(frames_df)
    assert got.schema == tables.EVENT_FRAMES_LANDED_SCHEMA
    in_day = got.filter(pl.col("date") == day.date())
    expected = frames.filter((pl.col("start") >= day) & (pl.col("start") < day + timedelta(days=1))).unique(
        "web_id"
    )
    assert in_day.height == expected.height > 0
    assert in_day.drop("ingested_at", "date").sort("web_id").equals(expected.sort("web_id"))
    assert got["web_id"].is_unique().all()


def test_options_are_checked_with_the_settings_contract(osipi: SparkSession, emulator: Emulator) -> None:
    api = {"pi_web_api_url": emulator.api}
    cases = {
        "unknown option(s) pasword": {**api, "pasword": "x"},
        "pi_web_api_url option is not set": {"table": "points"},
        "option pi_web_api_url='ftp://x' is not an http": {"pi_web_api_url": "ftp://x"},
        "option auth_method=basic needs option username and option password": {**api, "auth_method": "basic"},
        "table='nope' is not one of": {**api, "table": "nope"},
        "table=recorded needs the start option": api,
        "option start: Cannot read PI time": {**api, "start": "yesterday-ish"},
        "table=interpolated needs the interval option": {**api, "table": "interpolated", "start": "*-1h"},
        "option summary_types='Mean'": {**api, "table": "summary", "start": "*-1h", "summary_types": "Mean"},
        "option max_partitions=0 must be at least 1": {**api, "start": "*-1h", "max_partitions": "0"},
    }
    for message, options in cases.items():
        with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_options(options)
    with pytest.raises(OptionError, match="a stream has no end"):
        parse_options({**api, "end": "*"}, streaming=True)
    # Through Spark the same message reaches the user when the DataFrame is defined.
    with pytest.raises(Exception, match="unknown option\\(s\\) pasword"):
        reader(osipi, emulator.api, pasword="x").load()


SECRET = "s3cr3t-Pa55"


def test_secrets_stay_out_of_plans_reprs_and_logs(
    osipi: SparkSession, emulator_factory, caplog: pytest.LogCaptureFixture
) -> None:
    emu = emulator_factory(
        "--tags", "40", "--auth", "basic", "--username", "svc", "--password", SECRET,
        "--clock", "frozen:2024-05-01T12:00:00Z",
    )  # fmt: skip
    options = {
        "auth_method": "basic",
        "username": "svc",
        "password": SECRET,
        "start": "*-1h",
        "tag_filter": "*",
    }
    df = reader(osipi, emu.api, **options).load()
    assert df.count() > 0  # the credentials work
    plans = df._jdf.queryExecution().toString()
    assert SECRET not in plans and "osipi" in plans
    opts = parse_options({"pi_web_api_url": emu.api, **options})
    caplog.set_level(logging.DEBUG)
    with PIWebAPIClient(opts.client_config()) as pi:
        works = plan(pi, opts)
        rows = sum(f.height for w in works for f in w.frames(pi))
    assert rows > 0
    for text in (repr(opts), repr(opts.client_config()), repr(works), caplog.text):
        assert SECRET not in text
