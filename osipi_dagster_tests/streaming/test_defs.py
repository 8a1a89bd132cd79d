"""Dagster layer of streaming: the sensor's run requests, cursor and retries; the micro-batch asset's idempotence;
and the recorded hour (real pi/pi_timeseries asset) replacing streamed rows exactly, including a stray value.

Streamed segments are built from the shared emulator's recorded values, so expected values come from PI itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.streaming.assets import pi_timeseries_stream
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.defs.streaming.sensors import (
    BATCH_TAG,
    OP_NAME,
    pi_stream_landing_sensor,
    stream_landing_job,
)
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import SPOOL_SCHEMA, Spool, SpoolReader
from osipi_dagster_tests.streaming.helpers import KEY, assert_lake_equals_pi, lake_rows

HOUR = datetime(2024, 5, 1, 10, tzinfo=UTC)
TAG_FILTER = "U1*-TI*"


@pytest.fixture(scope="module")
def recorded(emulator) -> pl.DataFrame:
    """PI's archive for the hour 10:00-11:00 of the TAG_FILTER tags (what a listener would have streamed)."""
    lake = Lake(str(Path(emulator.log_path.parent) / "catalogue"))
    dg.materialize([pi_points], resources=resources(emulator.api, lake.root_uri, Path("/nonexistent")))
    tags = lake.table("pi_points").scan().filter(pl.col("is_current")).collect()
    ids = tags.filter(pl.col("name").str.contains("(?i)^U1.*-TI.*$"))["web_id"].to_list()
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        return client.recorded(ids, HOUR, HOUR + timedelta(hours=1))


def resources(api: str, lake: str, spool: Path) -> dict[str, object]:
    return {
        "pi": PIWebAPIResource(pi_web_api_url=api, tag_filter=TAG_FILTER),
        "lake": LakeResource(root_uri=lake),
        "spool": SpoolResource(directory=str(spool)),
    }


def spooled(frame: pl.DataFrame, origin: str = "channel") -> pl.DataFrame:
    return (
        frame.with_columns(
            pl.lit(None, pl.Utf8).alias("tag"),
            pl.lit(origin).alias("origin"),
            pl.lit(datetime.now(UTC)).alias("received_at"),
            pl.lit(1_500_000).alias("lag_us"),
        )
        .select(list(SPOOL_SCHEMA))
        .cast(dict(SPOOL_SCHEMA))
    )


def write_segments(spool_dir: Path, parts: list[pl.DataFrame]) -> list[str]:
    with Spool(spool_dir, max_segment_age_s=3600) as spool:
        names = []
        for part in parts:
            spool.append(part)
            names.append(str(spool.seal()))
    return names


def run_batch(segments: list[str], res: dict[str, object], instance: dg.DagsterInstance | None = None):
    return dg.materialize(
        [pi_timeseries_stream],
        resources=res,
        instance=instance,
        run_config={"ops": {OP_NAME: {"config": {"segments": segments}}}},
        raise_on_error=False,
        tags={BATCH_TAG: "test"},
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    mat = result.asset_materializations_for_node(OP_NAME)[0]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_sensor_requests_each_batch_once_and_retries_a_failed_one(
    tmp_path: Path, recorded: pl.DataFrame
) -> None:
    spool_dir = tmp_path / "spool"
    names = write_segments(spool_dir, [spooled(recorded.slice(0, 50)), spooled(recorded.slice(50, 50))])
    res = {"spool": SpoolResource(directory=str(spool_dir))}
    with dg.instance_for_test() as instance:
        first = pi_stream_landing_sensor(dg.build_sensor_context(instance=instance, resources=res))
        [req] = first.run_requests
        assert req.run_key == "stream:1-2" and req.tags == {BATCH_TAG: "1-2"}
        assert req.run_config["ops"][OP_NAME]["config"]["segments"] == names
        again = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=res)
        )
        assert again.run_requests == [] and again.skip_reason is not None

        # The run for 1-2 fails (lake root is a file): the next tick re-requests exactly those segments.
        bad = tmp_path / "not-a-dir"
        bad.write_text("x")
        failed = dg.materialize(
            [pi_timeseries_stream],
            resources={**res, "lake": LakeResource(root_uri=str(bad))},
            instance=instance,
            run_config=req.run_config,
            tags=req.tags,
            raise_on_error=False,
        )
        assert not failed.success
        retry = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=again.cursor, resources=res)
        )
        [req2] = retry.run_requests
        assert req2.run_key == "stream:1-2#retry1" and req2.run_config == req.run_config

        ok = dg.materialize(
            [pi_timeseries_stream],
            resources={**res, "lake": LakeResource(root_uri=str(tmp_path / "lake"))},
            instance=instance,
            run_config=req2.run_config,
            tags=req2.tags,
        )
        assert metadata(ok)["values_inserted"] == 100
        done = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=retry.cursor, resources=res)
        )
        assert done.run_requests == [] and '"pending":{}' in str(done.cursor)


def test_batches_are_idempotent_and_the_recorded_hour_replaces_them(
    emulator, tmp_path: Path, recorded: pl.DataFrame
) -> None:
    lake, spool_dir = tmp_path / "lake", tmp_path / "spool"
    res = resources(emulator.api, str(lake), spool_dir)
    assert dg.materialize([pi_points], resources=res).success  # the recorded hour reads its tags from it
    # A compressed-away snapshot: streamed, but never archived.
    stray = recorded.head(1).with_columns(
        pl.col("timestamp") + timedelta(milliseconds=1), pl.lit(-1.0).alias("value")
    )
    half = recorded.height // 2
    # Overlapping segments (a gap read and channel messages both carrying values).
    parts = [spooled(recorded.slice(0, half + 20), "gap"), spooled(pl.concat([recorded.slice(half), stray]))]
    names = write_segments(spool_dir, parts)

    first = metadata(run_batch(names, res))
    assert first["values"] == recorded.height + 21
    assert first["values_inserted"] == recorded.height + 1
    assert first["duplicates_in_batch"] == 20
    assert first["latency_p50_s"] >= 1.5 and first["gap_values_in_batch"] == half + 20
    table = lake_rows(lake)
    assert table.height == recorded.height + 1 and table.filter(pl.struct(KEY).is_duplicated()).height == 0
    assert set(table["source"]) == {"stream"}

    # Replaying the same segments changes nothing.
    replay = metadata(run_batch(names, res))
    assert replay["values_inserted"] == 0 and replay["already_present"] == recorded.height + 1
    assert replay["delta_version"] == "unchanged"
    assert lake_rows(lake).sort(KEY).equals(table.sort(KEY))

    # The recorded partition makes the archive the truth for the hour: the stray goes, nothing is doubled.
    hourly = dg.materialize([pi_timeseries], resources=res, partition_key="2024-05-01-10:00")
    assert hourly.success
    after = lake_rows(lake)
    assert set(after["source"]) == {"recorded"}
    assert_lake_equals_pi(after, recorded, HOUR - timedelta(microseconds=1), HOUR + timedelta(hours=1))

    # A late replay of streamed segments into the reconciled hour is refused as superseded.
    late = metadata(run_batch(names, res))
    assert late["superseded_by_archive"] == recorded.height + 1 and late["values_inserted"] == 0
    assert lake_rows(lake).sort(KEY).equals(after.sort(KEY))
    assert SpoolReader(spool_dir).ready() == []


def test_one_landing_run_at_a_time_takes_everything_waiting(tmp_path: Path, recorded: pl.DataFrame) -> None:
    from dagster._core.storage.dagster_run import DagsterRun

    spool_dir = tmp_path / "spool"
    write_segments(spool_dir, [spooled(recorded.slice(0, 10))])
    res = {"spool": SpoolResource(directory=str(spool_dir))}
    with dg.instance_for_test() as instance:
        first = pi_stream_landing_sensor(dg.build_sensor_context(instance=instance, resources=res))
        [req] = first.run_requests
        # The daemon launched it and it is still running; two more segments are sealed meanwhile.
        run = instance.add_run(
            DagsterRun(
                job_name=stream_landing_job.name,
                run_id="a" * 32,
                status=dg.DagsterRunStatus.STARTED,
                tags=req.tags,
            )
        )
        write_segments(spool_dir, [spooled(recorded.slice(10, 10)), spooled(recorded.slice(20, 10))])
        busy = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=res)
        )
        assert busy.run_requests == []
        assert busy.skip_reason is not None and "in flight; 3 segments waiting" in str(
            busy.skip_reason.skip_message
        )
        SpoolReader(spool_dir).mark_landed(req.run_config["ops"][OP_NAME]["config"]["segments"])
        instance.report_run_failed(
            run
        )  # finished (status aside, its segments landed): the next run may start
        after = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=busy.cursor, resources=res)
        )
        [nxt] = after.run_requests
        assert nxt.run_key == "stream:2-3"
        assert nxt.run_config["ops"][OP_NAME]["config"]["segments"] == [
            "seg-000000000002.arrows",
            "seg-000000000003.arrows",
        ]
        assert '"pending":{"2-3":0}' in str(after.cursor)

        # With a minimum spacing between runs, a new segment waits for the interval since the last run's creation.
        write_segments(spool_dir, [spooled(recorded.slice(30, 10))])
        spaced = {"spool": SpoolResource(directory=str(spool_dir), min_run_interval_s=3600)}
        SpoolReader(spool_dir).mark_landed(nxt.run_config["ops"][OP_NAME]["config"]["segments"])
        held = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=after.cursor, resources=spaced)
        )
        assert held.run_requests == [] and "less than 3600 s since the last landing run; 1 waiting" in str(
            held.skip_reason.skip_message  # type: ignore[union-attr]
        )
        [last] = pi_stream_landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=held.cursor, resources=res)
        ).run_requests
        assert last.run_key == "stream:4-4"
