"""The report sensor, called as the daemon calls it: one materialization per lander commit (exactly once, also when
the daemon died after writing the events and before saving the cursor), and the checks on streamed data.

Segments hold PI's own recorded values (shared frozen emulator); the lander is the real one, in this process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.streaming.assets import STREAM_KEY
from osipi_dagster.defs.streaming.reporting import (
    COVERAGE_CHECK,
    UNIQUE_KEYS_CHECK,
    pi_stream_report_sensor,
)
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import Spool, SpoolReader
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster_tests.streaming.helpers import lake_rows, lander_commits
from osipi_dagster_tests.streaming.test_defs import spooled

H9 = datetime(2024, 5, 1, 9, tzinfo=UTC)
LISTENER = {
    "started_at": "2024-05-01T08:30:00+00:00",
    "channels": 2,
    "channels_connected": 2,
    "reconnects": 1,
}


@pytest.fixture(scope="module")
def archive(emulator) -> pl.DataFrame:
    """PI's recorded values 09:00-11:05 of 30 numeric streams."""
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        points = pl.concat(list(client.iter_points(client.data_servers()[0])))
        ids = points.filter(pl.col("point_type") == "Float32")["web_id"].to_list()[:30]
        return client.recorded(ids, H9, H9 + timedelta(hours=2, minutes=5))


def tick(instance: dg.DagsterInstance, cursor: str | None, res: dict[str, object]) -> dg.SensorResult:
    return pi_stream_report_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=res))


def events(result: dg.SensorResult, kind: type) -> list:
    return [e for e in result.asset_events if isinstance(e, kind)]


def test_each_landing_is_reported_once_with_its_checks(
    emulator, tmp_path: Path, archive: pl.DataFrame
) -> None:
    spool_dir, lake_dir = tmp_path / "spool", tmp_path / "lake"
    in_hour = pl.col("timestamp") < H9 + timedelta(hours=1)
    lost = archive.filter(in_hour & pl.col("good"))["web_id"][0]  # a stream whose 09:00 values never arrived
    hour9 = archive.filter(in_hour & (pl.col("web_id") != lost))
    early = ~in_hour & (pl.col("timestamp") <= H9 + timedelta(hours=1, minutes=5))
    rest = archive.filter(~in_hour & ~early)  # 10:05-11:05, landed later
    parts = [
        hour9.head(hour9.height // 2),
        hour9.tail(hour9.height - hour9.height // 2),
        archive.filter(early),
    ]
    with Spool(spool_dir, max_segment_age_s=3600) as spool:
        # The listener subscribed these streams (its coverage names them), then spooled three segments.
        spool.append(spooled(archive.head(0)), covered=(archive["web_id"].unique().to_list(), H9))
        for part in parts:
            spool.append(spooled(part))
            spool.seal()
    with Lander(
        Lake(str(lake_dir)), SpoolReader(spool_dir), max_batch_bytes=1, listener_figures=lambda: LISTENER
    ) as lander:
        while lander.land_once() is not None:
            pass
    commits = lander_commits(lake_dir)
    assert len(commits) == 3

    res = {
        "lake": LakeResource(root_uri=str(lake_dir)),
        "spool": SpoolResource(directory=str(spool_dir)),
        "pi": PIWebAPIResource(pi_web_api_url=emulator.api, tag_filter="*"),
    }
    with dg.instance_for_test() as instance:
        first = tick(instance, None, res)
        mats = events(first, dg.AssetMaterialization)
        assert [m.metadata["delta_version"].value for m in mats] == sorted(commits)
        assert [m.metadata["values_inserted"].value for m in mats] == [p.height for p in parts]
        assert all(m.asset_key == STREAM_KEY for m in mats)
        meta = mats[0].metadata
        assert meta["listener_reconnects"].value == 1 and meta["landed_by"].value == "lander"
        assert meta["values"].value == parts[0].height and meta["segment_count"].value == 1
        assert "latency_p50_s" in meta and "spool_to_lake_p95_s" in meta
        [unique] = [e for e in events(first, dg.AssetCheckEvaluation) if e.check_name == UNIQUE_KEYS_CHECK]
        assert unique.passed and unique.metadata["rows_checked"].value == lake_rows(lake_dir).height
        # Hour 09:00 closed (values up to 10:05 landed, all channels up, no backlog): one stream's values are missing.
        [coverage] = [e for e in events(first, dg.AssetCheckEvaluation) if e.check_name == COVERAGE_CHECK]
        missing = archive.filter(in_hour & (pl.col("web_id") == lost) & pl.col("good")).height
        assert not coverage.passed and coverage.metadata["missing_values"].value == missing > 0
        assert coverage.metadata["streams_short"].value == 1 and coverage.metadata["sample_short"].value == [
            lost
        ]
        assert coverage.metadata["extra_values"].value == 0

        # The daemon writes the events, then dies before saving the cursor: the next tick reports nothing again.
        for event in first.asset_events:
            instance.report_runless_asset_event(event)
        again = tick(instance, None, res)
        assert events(again, dg.AssetMaterialization) == []
        assert len(instance.fetch_materializations(STREAM_KEY, limit=100).records) == 3

        # Hour 10:00 closes with the next landing (values up to 11:05); it is complete.
        with Spool(spool_dir, max_segment_age_s=3600) as spool:
            spool.append(spooled(rest))
            spool.seal()
        with Lander(Lake(str(lake_dir)), SpoolReader(spool_dir), listener_figures=lambda: LISTENER) as lander:
            assert lander.land_once() is not None
        later = tick(instance, first.cursor, res)
        [mat] = events(later, dg.AssetMaterialization)
        assert mat.metadata["delta_version"].value == max(commits) + 1
        [coverage10] = [e for e in events(later, dg.AssetCheckEvaluation) if e.check_name == COVERAGE_CHECK]
        assert (
            coverage10.passed and coverage10.metadata["hour"].value == (H9 + timedelta(hours=1)).timestamp()
        )
        assert coverage10.metadata["pi_values"].value == coverage10.metadata["lake_values"].value > 0
