"""`spark.readStream.format("osipi")` into Delta: across a restart of the query and of the emulator, the sink holds
every recorded value of the window exactly once. Time moves through the emulator's admin clock, never by sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import AuthenticationError, ClientConfig, PIWebAPIClient, PIWebAPIError
from osipi_dagster.spark import register
from osipi_dagster.spark import stream as stream_module
from osipi_dagster.spark.offsets import advance, frontiers, offset, stream_groups, to_us
from osipi_dagster.spark.options import parse_options
from osipi_dagster.spark.tables import TIMESERIES_SCHEMA
from osipi_dagster_tests.defs.conftest import TAG_FILTER
from osipi_dagster_tests.emulator import Emulator, free_port, start_emulator

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
START = T0 - timedelta(minutes=20)
EMULATOR_ARGS = ("--seed", "42", "--tags", "500", "--admin")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_offsets_round_trip_and_advance_per_tag_never_back() -> None:
    frontier = {"b": 5, "a": to_us(T0)}
    packed = offset(frontier)
    assert frontiers(packed) == frontier and packed["tags"] == 2 and packed["until"] == T0.isoformat()
    assert offset(dict(reversed(frontier.items()))) == packed  # equal frontiers, equal offset: "no new data"
    assert frontiers(None) == {}
    with pytest.raises(ValueError, match="another release"):
        frontiers({**packed, "v": 0})

    start = {"a": 100, "b": 500, "gone": 50}
    # a moves to its last value, b's candidate is behind its frontier (an archive edit), c is new: starts at now.
    nxt = advance(start, {"a": 300, "b": 400}, now_us=1000, tags=["a", "b", "c"])
    assert nxt == {"a": 300, "b": 500, "gone": 50, "c": 1000}
    # Trigger.AvailableNow: never past the target taken when the query started.
    assert advance(start, {"a": 900}, now_us=1000, tags=["a"], target={"a": 250}) == {**start, "a": 250}
    # One read per group; a quiet tag (frontier far back) is not grouped with busy ones.
    groups = stream_groups(
        {"busy": 9_000_000_000, "quiet": 0, "same": 9_000_000_000},
        {"busy": 10_000_000_000, "quiet": 10_000_000_000, "same": 9_000_000_000},
    )
    assert [[w for w, _, _ in g.bounds] for g in groups] == [["busy"], ["quiet"]]


class FakeTime:
    """The stream module's clock, moved by the test instead of slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pi_unreachable_holds_the_offset_until_the_outage_timeout(
    monkeypatch: pytest.MonkeyPatch, emulator_factory: Callable[..., Emulator]
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(stream_module, "time", clock)
    down = {
        "pi_web_api_url": f"http://127.0.0.1:{free_port()}/piwebapi",
        "max_retries": "0",
        "outage_timeout_s": "60",
    }
    reader = stream_module.OSIPIStreamReader(parse_options(down, streaming=True), None)  # type: ignore[arg-type]
    start = offset({"w": to_us(T0)})
    assert reader.latestOffset(start, None) == start  # refused: no new offset, no failure
    clock.now += 59
    assert reader.latestOffset(start, None) == start
    clock.now += 2
    with pytest.raises(PIWebAPIError, match="cannot connect"):
        reader.latestOffset(start, None)
    # Rejected credentials are not an outage: they fail at once.
    emu = emulator_factory("--tags", "10", "--auth", "basic", "--username", "u", "--password", "right")
    wrong = {"pi_web_api_url": emu.api, "auth_method": "basic", "username": "u", "password": "wrong"}
    reader = stream_module.OSIPIStreamReader(parse_options(wrong, streaming=True), None)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        reader.latestOffset(start, None)


class Stream:
    """One streaming query from the osipi source into a Delta path, restartable on the same checkpoint."""

    def __init__(self, spark: SparkSession, api: str, root: Path) -> None:
        self.spark, self.api = spark, api
        self.sink, self.checkpoint = root / "sink", root / "checkpoint"

    def start(self, *, available_now: bool = False) -> StreamingQuery:
        df = (
            self.spark.readStream.format("osipi")
            .option("pi_web_api_url", self.api)
            .option("tag_filter", TAG_FILTER)
            .option("start", iso(START))
            .option("min_poll_interval_s", "0.2")
            .option("max_retries", "1")
            .option("timeout_s", "5")
            .load()
        )
        writer = df.writeStream.format("delta").option("checkpointLocation", str(self.checkpoint))
        writer = (
            writer.trigger(availableNow=True)
            if available_now
            else writer.trigger(processingTime="200 milliseconds")
        )
        return writer.start(str(self.sink))

    def rows(self) -> pl.DataFrame:
        return pl.read_delta(str(self.sink))


def archive(api: str, end: datetime) -> pl.DataFrame:
    """Every recorded value of the tags in [START, end], read with the client (the batch path's reader)."""
    with PIWebAPIClient(ClientConfig(base_url=api)) as pi:
        points = pl.concat([p for s in pi.data_servers() for p in pi.iter_points(s, TAG_FILTER)])
        return pi.recorded(points["web_id"].to_list(), START, end, include_end=True)


CONTENT = ["web_id", "timestamp", "ordinal", "value", "value_text", "digital_code", "is_system", "good"]


def assert_exactly(rows: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert rows.select(pl.struct("web_id", "timestamp", "ordinal").is_unique().all()).item(), "duplicate rows"
    got = rows.select(CONTENT).sort("web_id", "timestamp", "ordinal")
    want = expected.select(CONTENT).sort("web_id", "timestamp", "ordinal")
    assert got.height == want.height
    assert got.equals(want)


def test_stream_into_delta_across_query_and_emulator_restarts(
    osipi_stream: SparkSession, emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator_factory(*EMULATOR_ARGS, "--clock", f"frozen:{iso(T0)}")
    admin = httpx.Client(base_url=emu.root, timeout=10)
    stream = Stream(osipi_stream, emu.api, tmp_path)

    # 1. First run, from START to the emulator's now; then the query stops.
    query = stream.start()
    query.processAllAvailable()
    first = stream.rows()
    assert_exactly(first, archive(emu.api, T0))
    assert first.schema == TIMESERIES_SCHEMA and set(first["source"]) == {"stream"}
    assert first["tag"].null_count() == 0
    query.stop()

    # 2. Ten minutes later the query restarts from its checkpoint (here as Trigger.AvailableNow).
    admin.post("/admin/clock", json={"Advance": "10m"}).raise_for_status()
    stream.start(available_now=True).awaitTermination(300)
    assert_exactly(stream.rows(), archive(emu.api, T0 + timedelta(minutes=10)))

    # 3. A continuous query again; the emulator restarts under it (same port, clock further on).
    query = stream.start()
    query.processAllAvailable()
    emu.stop()
    emu = start_emulator(
        *EMULATOR_ARGS, "--clock", f"frozen:{iso(T0 + timedelta(minutes=20))}", port=emu.port
    )
    try:
        admin = httpx.Client(base_url=emu.root, timeout=10)
        query.processAllAvailable()
        assert query.exception() is None
        now = T0 + timedelta(minutes=20)
        assert_exactly(stream.rows(), archive(emu.api, now))

        # 4. A buffered value arrives late (stamped before the server's now at the last batch) for a quiet tag,
        #    after that tag's last value: the tag's own frontier has not passed it, so it is streamed once.
        with PIWebAPIClient(ClientConfig(base_url=emu.api)) as pi:
            ends = pi.end_values(stream.rows()["web_id"].unique().to_list())
        quiet = ends.sort("timestamp").row(0, named=True)
        late_ts = quiet["timestamp"] + timedelta(seconds=1)
        assert late_ts < now - timedelta(minutes=1)
        insert = [{"Timestamp": iso(late_ts), "Value": 7}]
        admin.post(f"/admin/streams/{quiet['web_id']}/insert", json=insert).raise_for_status()
        admin.post("/admin/clock", json={"Advance": "5m"}).raise_for_status()
        query.processAllAvailable()
        rows = stream.rows()
        assert_exactly(rows, archive(emu.api, now + timedelta(minutes=5)))
        assert (
            rows.filter((pl.col("web_id") == quiet["web_id"]) & (pl.col("timestamp") == late_ts)).height == 1
        )
        query.stop()
        assert to_us(rows["timestamp"].min()) >= to_us(START)
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def osipi_stream(spark: SparkSession) -> SparkSession:
    register(spark)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark
