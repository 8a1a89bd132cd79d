"""A PIConnection with tag_shards: hour × shard partitions, one run per hour × shard from its schedule and
backfills, no time-partition freshness check (Dagster's accepts only time-window partitions), and the setting
validated by the contract like any other."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from osipi_dagster.components.pi_connection import PIConnection, PIConnectionError
from osipi_dagster.defs.pi.partitions import tag_shards_from_env

SCHEDULED = datetime(2024, 5, 1, 10, 10, tzinfo=UTC)


def connection(tmp_path: Path, **extra: object) -> PIConnection:
    attributes = {"pi_web_api_url": "https://pi.example.com/piwebapi", "lake_uri": str(tmp_path / "lake")}
    return PIConnection.from_attributes("site_a", {**attributes, **extra})


def test_sharded_connection_has_hour_by_shard_partitions_and_schedules_each_shard(tmp_path: Path) -> None:
    defs = connection(tmp_path, tag_shards=3).build_defs(None)  # type: ignore[arg-type]
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["site_a", "pi_timeseries"]))
    parts = node.partitions_def
    assert isinstance(parts, dg.MultiPartitionsDefinition)
    assert parts.get_partitions_def_for_dimension("shard").get_partition_keys() == ["0", "1", "2"]
    assert node.backfill_policy == dg.BackfillPolicy.multi_run(1)
    # The catalogue stays unpartitioned and the event frames daily: only the time series is sharded.
    assert graph.get(dg.AssetKey(["site_a", "pi_points"])).partitions_def is None
    assert not any(k.asset_key == node.key and "freshness" in k.name for k in graph.asset_check_keys)

    schedule = defs.resolve_schedule_def("site_a__pi_timeseries_hourly_schedule")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=SCHEDULED, repository_def=defs.get_repository_def()
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert sorted(r.partition_key for r in requests) == [f"2024-05-01-09:00|{s}" for s in range(3)]


def test_unsharded_connection_keeps_hourly_partitions_and_its_freshness_check(tmp_path: Path) -> None:
    defs = connection(tmp_path).build_defs(None)  # type: ignore[arg-type]
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["site_a", "pi_timeseries"]))
    assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition)
    assert node.backfill_policy == dg.BackfillPolicy.multi_run(24)
    assert any(k.asset_key == node.key and "freshness" in k.name for k in graph.asset_check_keys)


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "greater than or equal to 1"), (257, "less than or equal to 256"), ("x", "integer")],
)
def test_bad_tag_shards_are_refused_by_name(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(PIConnectionError, match=rf"tag_shards.*{message}"):
        connection(tmp_path, tag_shards=value)


def test_the_environment_connection_reads_osipi_tag_shards() -> None:
    assert tag_shards_from_env({}) == 1
    assert tag_shards_from_env({"OSIPI_TAG_SHARDS": "8"}) == 8
    with pytest.raises(ValueError, match=r"OSIPI_TAG_SHARDS='0' is out of range: use a value in \[1, 256\]"):
        tag_shards_from_env({"OSIPI_TAG_SHARDS": "0"})
