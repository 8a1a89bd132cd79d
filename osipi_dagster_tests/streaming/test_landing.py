"""Landing against a real Delta table: ownership per (hour, stream) and the race with the hourly archive replace.

The replace is forced between the ownership decision and the merge (the landing's `before_merge` seam), so the race
is deterministic; values are PI's own recorded values from the shared emulator, read back with deltalake's reader.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import UTC_US
from osipi_dagster.lib.streaming import SPOOL_SCHEMA, STREAMED_SCHEMA, Spool, SpoolReader, land_segments
from osipi_dagster_tests.streaming.helpers import KEY, lake_rows

HOUR = datetime(2024, 5, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def hour_values(emulator) -> dict[str, pl.DataFrame]:
    """PI's archive for 09:00-10:00 of two streams: A (read by the recorded landing) and B (outside its tag
    filter, streamed only)."""
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        points = pl.concat(list(client.iter_points(client.data_servers()[0])))
        a, b = points.filter(pl.col("point_type") == "Float32")["web_id"].to_list()[:2]
        frame = client.recorded([a, b], HOUR, HOUR + timedelta(hours=1))
    return {"A": frame.filter(pl.col("web_id") == a), "B": frame.filter(pl.col("web_id") == b)}


def spooled(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.with_columns(
            pl.lit(None, pl.Utf8).alias("tag"),
            pl.lit("channel").alias("origin"),
            pl.lit(datetime.now(UTC)).alias("received_at"),
            pl.lit(1_000_000).alias("lag_us"),
        )
        .select(list(SPOOL_SCHEMA))
        .cast(dict(SPOOL_SCHEMA))
    )


def archived(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows as the recorded landing (pi/pi_timeseries) writes them."""
    return (
        frame.with_columns(
            pl.lit(None, pl.Utf8).alias("tag"),
            pl.lit(datetime.now(UTC), dtype=UTC_US).alias("ingested_at"),
            pl.col("timestamp").dt.date().alias("date"),
            pl.lit("recorded").alias("source"),
        )
        .select(list(STREAMED_SCHEMA))
        .cast(dict(STREAMED_SCHEMA))
    )


@pytest.mark.parametrize("table_exists", [False, True], ids=["new-table", "existing-table"])
def test_archive_replace_between_check_and_merge_wins(
    tmp_path: Path, hour_values: dict[str, pl.DataFrame], table_exists: bool
) -> None:
    a, b = hour_values["A"], hour_values["B"]
    assert a.height > 10 and b.height > 10
    lake = Lake(str(tmp_path / "lake"))
    ref = lake.table("pi_timeseries")
    if table_exists:
        # Streamed rows of an earlier hour, so the table (and the date partition) already exist.
        earlier = archived(b.head(3)).with_columns(
            pl.col("timestamp") - timedelta(hours=1), source=pl.lit("stream")
        )
        ref.append([earlier], partition_by=["date"])
    with Spool(tmp_path / "spool", max_segment_age_s=3600) as spool:
        spool.append(spooled(pl.concat([a, b])))
        name = str(spool.seal())
    before = lake_rows(tmp_path / "lake") if table_exists else None

    calls: list[int] = []

    def hourly_replace_commits_now(attempt: int) -> None:
        # The recorded partition of the hour lands after the landing decided ownership, before it merges.
        calls.append(attempt)
        if attempt == 1:
            ref.replace_window(
                [archived(a)],
                column="timestamp",
                start=HOUR,
                end=HOUR + timedelta(hours=1),
                partition_by=["date"],
            )

    report = land_segments(
        lake, SpoolReader(tmp_path / "spool"), [name], before_merge=hourly_replace_commits_now
    )
    assert calls == [1, 2], "the lost commit race must be retried with ownership decided again"
    assert report.merge_attempts == 2
    # A's hour belongs to the archive now; B is not read by the recorded landing, so its streamed rows stay.
    assert report.superseded_by_archive == a.height
    assert report.inserted == b.height and report.already_present == 0

    table = lake_rows(tmp_path / "lake")
    assert table.filter(pl.struct(KEY).is_duplicated()).height == 0
    hour = table.filter((pl.col("timestamp") >= HOUR) & (pl.col("timestamp") < HOUR + timedelta(hours=1)))
    got_a = hour.filter(pl.col("web_id") == a["web_id"][0]).sort(KEY)
    got_b = hour.filter(pl.col("web_id") == b["web_id"][0]).sort(KEY)
    assert set(got_a["source"]) == {"recorded"} and set(got_b["source"]) == {"stream"}
    compared = [*KEY, "value", "good"]
    assert got_a.select(compared).equals(a.select(compared).sort(KEY))
    assert got_b.select(compared).equals(b.select(compared).sort(KEY))
    if before is not None:
        earlier = table.filter(pl.col("timestamp") < HOUR).sort(KEY)
        assert earlier.equals(before.sort(KEY).select(earlier.columns))

    # A replay after reconciliation: A refused again, B already present; nothing committed.
    version = ref.version()
    replay = land_segments(lake, SpoolReader(tmp_path / "spool"), [name])
    assert (replay.superseded_by_archive, replay.inserted, replay.already_present) == (a.height, 0, b.height)
    assert ref.version() == version
