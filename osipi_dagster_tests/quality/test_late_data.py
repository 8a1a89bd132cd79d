"""Late data end to end: materialize hours and a day of event frames from a private emulator, edit PI through its
admin API (backdated insert, replaced values, a flag-only edit, deletes, a closed event frame), tick the sensor,
run exactly what it requests, and check the lake equals PI again and the next tick requests nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.defs.pi import jobs
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.event_frames import event_frame_attributes, event_frames
from osipi_dagster.defs.pi.names import REPAIR_KEY_TAG
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.quality.late_data import pi_late_data_sensor
from osipi_dagster.lib.landing import pi_name_filter_regex
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.defs.conftest import TAG_FILTER, make_resources, read_table
from osipi_dagster_tests.emulator import Emulator

HOURS = ["2024-05-01-08:00", "2024-05-01-09:00", "2024-05-01-10:00"]
DAY = "2024-05-01"
H08, H09, H10 = (datetime(2024, 5, 1, h, tzinfo=UTC) for h in (8, 9, 10))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def tick(instance: dg.DagsterInstance, resources: dict[str, object], cursor: str | None):
    # The sensor's partitioned run requests are resolved against the jobs of a code location.
    definitions = dg.Definitions(
        assets=[pi_points, pi_timeseries, event_frames, event_frame_attributes],
        jobs=[jobs.pi_timeseries_job, jobs.pi_event_frames_job],
        sensors=[pi_late_data_sensor],
        resources=resources,
    )
    # As a context manager: its exit releases the resources the evaluation built.
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=definitions
    ) as context:
        return pi_late_data_sensor.evaluate_tick(context)


def run_request(instance: dg.DagsterInstance, resources: dict[str, object], request: dg.RunRequest) -> None:
    selection = (
        [pi_timeseries] if request.job_name == "pi_timeseries_job" else [event_frames, event_frame_attributes]
    )
    result = dg.materialize(
        selection,
        resources=resources,
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
    )
    assert result.success


def pi_values(api: str, web_ids: list[str], start: datetime, end: datetime) -> pl.DataFrame:
    from osipi_dagster.lib.piwebapi import ClientConfig

    with PIWebAPIClient(ClientConfig(base_url=api)) as client:
        return client.recorded(web_ids, start, end)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(list(VALUES_SCHEMA)).sort("web_id", "timestamp", "ordinal")


@pytest.fixture
def private(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(*DEFAULT_ARGS)


def test_sensor_repairs_exactly_what_changed_in_pi(private: Emulator, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    resources = make_resources(private.api, lake)
    admin = httpx.Client(base_url=private.root, timeout=10)
    with dg.instance_for_test() as instance:
        assert dg.materialize([pi_points], resources=resources, instance=instance).success
        for key in HOURS:
            assert dg.materialize(
                [pi_timeseries], resources=resources, instance=instance, partition_key=key
            ).success
        assert dg.materialize(
            [event_frames, event_frame_attributes],
            resources=resources,
            instance=instance,
            partition_key=DAY,
        ).success

        first = tick(instance, resources, None)
        assert first.run_requests == [] and "3 hours audited" in (first.skip_message or "")

        landed = read_table(lake, "pi_timeseries")
        good = landed.filter(pl.col("good") & ~pl.col("is_system") & pl.col("value").is_not_null())
        busy = good.group_by("web_id").len().sort("len", "web_id", descending=True)["web_id"].to_list()
        tag_a, tag_b = busy[0], busy[1]

        def rows_of(web_id: str, hour: datetime) -> pl.DataFrame:
            return good.filter(
                (pl.col("web_id") == web_id)
                & (pl.col("timestamp") >= hour)
                & (pl.col("timestamp") < hour + timedelta(hours=1))
                & (pl.col("ordinal") == 0)
            ).sort("timestamp")

        # Hour 08: one value replaced (count unchanged, total changed), one flag-only edit (count and total
        # unchanged: only the checksum can see it).
        replaced = rows_of(tag_a, H08).row(3, named=True)
        flagged = rows_of(tag_b, H08).row(5, named=True)
        r = admin.post(
            f"/admin/streams/{tag_a}/replace",
            json=[{"Timestamp": iso(replaced["timestamp"]), "Value": replaced["value"] + 1000.0}],
        )
        assert r.status_code == 200, r.text
        r = admin.post(
            f"/admin/streams/{tag_b}/replace",
            json=[{"Timestamp": iso(flagged["timestamp"]), "Value": flagged["value"], "Questionable": True}],
        )
        assert r.status_code == 200, r.text
        # Hour 09: a backdated insert (a PI buffer flushing) and two deleted values.
        late_ts = H09 + timedelta(minutes=17, seconds=3)
        r = admin.post(f"/admin/streams/{tag_a}/insert", json=[{"Timestamp": iso(late_ts), "Value": 77.25}])
        assert r.status_code == 200, r.text
        doomed = rows_of(tag_b, H09)["timestamp"].head(2).to_list()
        r = admin.post(f"/admin/streams/{tag_b}/delete", json={"Timestamps": [iso(t) for t in doomed]})
        assert r.json() == {"Deleted": 2}
        # An event frame in progress when its day was materialized closes.
        frames = read_table(lake, "event_frames")
        open_frame = frames.filter(pl.col("in_progress")).sort("start")["web_id"][0]
        r = admin.post(f"/admin/eventframes/{open_frame}/close", json={"EndTime": "2024-05-01T11:30:00Z"})
        assert r.status_code == 200, r.text

        second = tick(instance, resources, first.cursor)
        requested = sorted((req.job_name, req.partition_key) for req in second.run_requests)
        assert requested == [
            ("pi_event_frames_job", DAY),
            ("pi_timeseries_job", HOURS[0]),
            ("pi_timeseries_job", HOURS[1]),
        ]
        assert all(req.tags["osipi/repair"] == "late_data" for req in second.run_requests)
        observed = {(e.asset_key.path[-1], e.partition): e.metadata for e in second.asset_events}
        assert observed[("pi_timeseries", HOURS[0])]["late_data_reasons"].value == "checksum, total"
        assert observed[("pi_timeseries", HOURS[1])]["late_data_reasons"].value == "checksum, count"
        assert observed[("pi_timeseries", HOURS[1])]["pi_good_count"].value == (
            observed[("pi_timeseries", HOURS[1])]["lake_good_count"].value - 1
        )
        assert observed[("event_frames", DAY)]["frames_closed"].value == 1

        # Idempotent: the same tick again asks for the same runs (same run keys, so Dagster would not launch
        # twice), and a tick with the new cursor while the repairs are in flight asks for nothing.
        again = tick(instance, resources, first.cursor)
        assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in second.run_requests)
        waiting = tick(instance, resources, second.cursor)
        assert waiting.run_requests == [] and "3 repairs in flight" in (waiting.skip_message or "")

        for request in second.run_requests:
            run_request(instance, resources, request)

        # The lake equals PI exactly for every audited hour.
        tag_ids = read_table(lake, "pi_points").filter(pl.col("is_current"))
        tag_ids = tag_ids.filter(pl.col("name").str.contains(pi_name_filter_regex(TAG_FILTER)))
        expected = canonical(
            pi_values(private.api, tag_ids["web_id"].to_list(), H08, H10 + timedelta(hours=1))
        )
        repaired = read_table(lake, "pi_timeseries")
        assert canonical(repaired).equals(expected)
        assert repaired.filter((pl.col("web_id") == tag_a) & (pl.col("timestamp") == late_ts))[
            "value"
        ].to_list() == [77.25]
        assert repaired.filter(pl.col("timestamp").is_in(doomed) & (pl.col("web_id") == tag_b)).height == 0
        # Hour 10 was not rewritten.
        h10 = repaired.filter(pl.col("timestamp") >= H10)
        assert h10["ingested_at"].n_unique() == 1
        assert h10["ingested_at"][0] == landed.filter(pl.col("timestamp") >= H10)["ingested_at"][0]

        # Each repair recorded what it changed and how late the new rows were.
        repairs = {
            e.partition: e.asset_observation_data.asset_observation.metadata
            for e in (
                r.event_log_entry.dagster_event
                for r in instance.fetch_observations(pi_timeseries.key, limit=50).records
            )
            if "rows_inserted" in e.asset_observation_data.asset_observation.metadata
        }
        assert {
            k: (v["rows_inserted"].value, v["rows_deleted"].value, v["rows_changed"].value)
            for k, v in repairs.items()
        } == {
            HOURS[0]: (0, 0, 2),
            HOURS[1]: (1, 2, 0),
        }
        new_row = repaired.filter((pl.col("web_id") == tag_a) & (pl.col("timestamp") == late_ts))
        lateness = (new_row["ingested_at"][0] - late_ts).total_seconds()
        assert repairs[HOURS[1]]["late_rows_lateness_max_s"].value == pytest.approx(lateness, abs=0.001)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"osipi/repair": "late_data"}))
        assert len(runs) == 3 and all(r.tags[REPAIR_KEY_TAG] for r in runs)

        # The closed frame is closed in the lake, exactly as PI reports it.
        frames_after = read_table(lake, "event_frames")
        closed = frames_after.filter(pl.col("web_id") == open_frame).row(0, named=True)
        assert not closed["in_progress"] and closed["end"] == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)
        assert frames_after.height == frames.height

        third = tick(instance, resources, second.cursor)
        assert third.run_requests == []
        assert "no change found" in (third.skip_message or "") and "in flight" not in third.skip_message
        assert third.cursor is not None and '"timeseries": {}' in third.cursor
    admin.close()


def test_in_progress_event_frames_are_rechecked_whatever_their_age(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A frame stored in progress 30 days before the newest day is still looked up (all frames, one POST /batch)."""
    lake = tmp_path / "lake"
    resources = make_resources(emulator.api, lake)
    old_day, new_day = "2024-04-01", DAY
    with dg.DagsterInstance.ephemeral() as instance:
        for day in (old_day, new_day):
            assert dg.materialize(
                [event_frames], resources=resources, instance=instance, partition_key=day
            ).success
        frames = read_table(lake, "event_frames")
        old = frames.filter((pl.col("date") == datetime(2024, 4, 1).date()) & ~pl.col("in_progress"))
        assert old.height > 0
        # That frame was still open when its day was landed; PI has closed it since (what it reports now).
        stale = old.sort("start")["web_id"][0]
        DeltaTable(str(lake / "event_frames")).update(
            predicate=f"web_id = '{stale}'", updates={"in_progress": "true", "end": "null"}
        )
        open_now = read_table(lake, "event_frames").filter(pl.col("in_progress"))
        assert open_now.height >= 2 and stale in open_now["web_id"].to_list()

        def batch_calls() -> int:
            endpoints = httpx.get(f"{emulator.root}/metrics", timeout=5).json()["endpoints"]
            return int(endpoints.get("POST /batch", {}).get("requests", 0))

        calls = batch_calls()
        result = tick(instance, resources, None)
        assert batch_calls() - calls == 1  # every open frame, old and new, in one batch request
        assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
            ("pi_event_frames_job", old_day)
        ]
        [event] = result.asset_events
        assert event.partition == old_day and event.metadata["frames_closed"].value == 1

        for request in result.run_requests:
            run_request(instance, resources, request)
        repaired = read_table(lake, "event_frames").filter(pl.col("web_id") == stale).row(0, named=True)
        assert not repaired["in_progress"] and repaired["end"] == old.sort("start")["end"][0]
        # Frames still open in PI stay watched and request nothing while they stay open.
        assert tick(instance, resources, result.cursor).run_requests == []
