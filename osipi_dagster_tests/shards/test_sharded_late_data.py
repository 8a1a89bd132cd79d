"""Late data with tag shards: after PI changes values of two tags in two shards, the late-data sensor requests
exactly those two hour × shard partitions; running them makes the lake equal PI again and rewrites no other shard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from osipi_dagster.defs.pi import jobs
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.event_frames import event_frame_attributes, event_frames
from osipi_dagster.defs.pi.names import EVENT_FRAMES_JOB, EVENT_FRAMES_KEY, TIMESERIES_JOB
from osipi_dagster.defs.pi.site import Site
from osipi_dagster.defs.pi.timeseries import timeseries_asset
from osipi_dagster.defs.quality.late_data import Targets, build_late_data_sensor
from osipi_dagster.lib.landing import pi_name_filter_regex
from osipi_dagster.lib.landing.late_data import EVENT_FRAMES, TIMESERIES
from osipi_dagster.lib.landing.shards import shard_of
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.defs.conftest import TAG_FILTER, make_resources, read_table
from osipi_dagster_tests.emulator import Emulator

SHARDS = 4
HOURS = ["2024-05-01-08:00", "2024-05-01-09:00"]
H08, H09 = (datetime(2024, 5, 1, h, tzinfo=UTC) for h in (8, 9))
SITE = Site(tag_shards=SHARDS)
ASSET = timeseries_asset(SITE)
JOBS = jobs.site_jobs(SITE)
SENSOR = build_late_data_sensor(
    "pi_late_data_sensor",
    "pi",
    "lake",
    Targets(
        {TIMESERIES: ASSET.key, EVENT_FRAMES: EVENT_FRAMES_KEY},
        {TIMESERIES: JOBS[TIMESERIES_JOB], EVENT_FRAMES: JOBS[EVENT_FRAMES_JOB]},
        SHARDS,
    ),
)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def tick(instance: dg.DagsterInstance, resources: dict[str, object], cursor: str | None):
    definitions = dg.Definitions(
        assets=[pi_points, ASSET, event_frames, event_frame_attributes],
        jobs=[JOBS[TIMESERIES_JOB], JOBS[EVENT_FRAMES_JOB]],
        sensors=[SENSOR],
        resources=resources,
    )
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=definitions
    ) as context:
        return SENSOR.evaluate_tick(context)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(list(VALUES_SCHEMA)).sort("web_id", "timestamp", "ordinal")


@pytest.fixture
def private(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(*DEFAULT_ARGS)


def test_sensor_requests_only_the_changed_shard_hours(private: Emulator, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    resources = make_resources(private.api, lake)
    with dg.instance_for_test() as instance:
        assert dg.materialize([pi_points], resources=resources, instance=instance).success
        for hour in HOURS:
            for shard in range(SHARDS):
                key = f"{hour}|{shard}"
                assert dg.materialize(
                    [ASSET], resources=resources, instance=instance, partition_key=key
                ).success
        first = tick(instance, resources, None)
        assert first.run_requests == [] and "2 hours audited" in (first.skip_message or "")

        landed = read_table(lake, "pi_timeseries")
        good = landed.filter(pl.col("good") & ~pl.col("is_system") & pl.col("value").is_not_null())
        busy = good.group_by("web_id").len().sort("len", "web_id", descending=True)["web_id"].to_list()
        tag_a = busy[0]
        tag_b = next(w for w in busy if shard_of(w, SHARDS) != shard_of(tag_a, SHARDS))
        shard_a, shard_b = str(shard_of(tag_a, SHARDS)), str(shard_of(tag_b, SHARDS))
        admin = httpx.Client(base_url=private.root, timeout=10)
        row = (
            good.filter((pl.col("web_id") == tag_a) & (pl.col("timestamp") < H09))
            .sort("timestamp")
            .row(3, named=True)
        )
        r = admin.post(
            f"/admin/streams/{tag_a}/replace",
            json=[{"Timestamp": iso(row["timestamp"]), "Value": row["value"] + 1000.0}],
        )
        assert r.status_code == 200, r.text
        late_ts = H09 + timedelta(minutes=17, seconds=3)
        r = admin.post(f"/admin/streams/{tag_b}/insert", json=[{"Timestamp": iso(late_ts), "Value": 77.25}])
        assert r.status_code == 200, r.text
        admin.close()

        second = tick(instance, resources, first.cursor)
        requested = sorted((req.job_name, req.partition_key) for req in second.run_requests)
        assert requested == [
            ("pi_timeseries_job", f"{HOURS[0]}|{shard_a}"),
            ("pi_timeseries_job", f"{HOURS[1]}|{shard_b}"),
        ]
        observed = {e.partition: e.metadata for e in second.asset_events}
        assert observed[f"{HOURS[0]}|{shard_a}"]["tags_differing"].value == 1
        waiting = tick(instance, resources, second.cursor)
        assert waiting.run_requests == [] and "2 repairs in flight" in (waiting.skip_message or "")

        for request in second.run_requests:
            result = dg.materialize(
                [ASSET],
                resources=resources,
                instance=instance,
                partition_key=request.partition_key,
                tags=request.tags,
            )
            assert result.success

        tags = read_table(lake, "pi_points").filter(pl.col("is_current"))
        tags = tags.filter(pl.col("name").str.contains(pi_name_filter_regex(TAG_FILTER)))
        with PIWebAPIClient(ClientConfig(base_url=private.api)) as client:
            expected = canonical(client.recorded(tags["web_id"].to_list(), H08, H09 + timedelta(hours=1)))
        repaired = read_table(lake, "pi_timeseries")
        assert canonical(repaired).equals(expected)
        # Only the two repaired shard × hour cells were rewritten.
        rewritten = repaired.join(
            landed.select("web_id", "timestamp", "ordinal", "ingested_at"),
            on=["web_id", "timestamp", "ordinal", "ingested_at"],
            how="anti",
        )
        cells = set(
            rewritten.select(
                pl.col("timestamp").dt.truncate("1h").dt.strftime("%Y-%m-%d-%H:%M"), "shard"
            ).iter_rows()
        )
        assert cells == {(HOURS[0], shard_a), (HOURS[1], shard_b)}

        third = tick(instance, resources, second.cursor)
        assert third.run_requests == [] and "no change found" in (third.skip_message or "")
