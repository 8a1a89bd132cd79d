"""The lander's compaction: a landing a second adds a file a second to each date it touches; every
`compact_interval_s` the dates landed since the last pass are packed into one file each, rows unchanged, with no
report in the compaction commit (so Dagster shows no extra landing). PI's recorded values over a midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import deltalake
import polars as pl
import pyarrow as pa
import pytest

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import SpoolReader
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster.lib.streaming.spool import Spool
from osipi_dagster_tests.streaming.helpers import lake_rows, lander_commits
from osipi_dagster_tests.streaming.test_landing import spooled

START = datetime(2024, 4, 30, 22, tzinfo=UTC)
SLICES = 8  # landings, each of 30 minutes of values: four on each date


@pytest.fixture(scope="module")
def values(emulator) -> pl.DataFrame:
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        ids = pl.concat(list(client.iter_points(client.data_servers()[0])))["web_id"].to_list()[:20]
        return client.recorded(ids, START, START + timedelta(hours=4))


def files_by_date(lake: Path) -> dict[str, list[str]]:
    add = deltalake.DeltaTable(str(lake / "pi_timeseries")).get_add_actions(flatten=True)
    actions = pl.from_arrow(pa.table(add))  # deltalake 1.x returns an arro3 table
    assert isinstance(actions, pl.DataFrame)
    out: dict[str, list[str]] = {}
    for path, day in zip(actions["path"], actions["partition.date"], strict=True):
        out.setdefault(str(day), []).append(path)
    return out


def land_slices(lander: Lander, spool: Spool, frame: pl.DataFrame, slices: int) -> None:
    for i in range(slices):
        lo = START + timedelta(minutes=30 * i)
        part = frame.filter(pl.col("timestamp").is_between(lo, lo + timedelta(minutes=30), closed="left"))
        spool.append(spooled(part))
        spool.seal()
        assert lander.land_once() is not None


def test_compaction_packs_each_landed_date_into_one_file(values: pl.DataFrame, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Spool(tmp_path / "spool", max_segment_age_s=3600) as spool:
        reader = SpoolReader(tmp_path / "spool")
        with Lander(Lake(str(lake)), reader, compact_interval_s=1e-6) as lander:
            land_slices(lander, spool, values, SLICES)
            before = files_by_date(lake)
            rows_before = lake_rows(lake).sort("web_id", "timestamp", "ordinal")
            assert sorted(before) == ["2024-04-30", "2024-05-01"]
            assert [len(v) for v in before.values()] == [SLICES // 2, SLICES // 2]

            lander.compact_due()
            after = files_by_date(lake)
            assert [len(v) for v in after.values()] == [1, 1]
            assert lake_rows(lake).sort("web_id", "timestamp", "ordinal").equals(rows_before)
            assert rows_before.height == values.height
            assert len(lander_commits(lake)) == SLICES  # the compaction commits carry no landing report
            assert lander.stats.compactions == 1
            assert lander.stats.compaction_files_removed == SLICES
            assert lander.stats.compaction_errors == 0

            # Later landings touch only 2024-05-01: the next pass leaves the other date's file alone.
            later = values.with_columns(pl.col("timestamp") + timedelta(hours=2))
            more = later.filter(pl.col("timestamp") >= START + timedelta(hours=4))
            more = more.filter(pl.col("timestamp") < START + timedelta(hours=5))
            spool.append(spooled(more))
            spool.seal()
            assert lander.land_once() is not None
            assert len(files_by_date(lake)["2024-05-01"]) == 2
            lander.compact_due()
            final = files_by_date(lake)
            assert final["2024-04-30"] == after["2024-04-30"]
            assert len(final["2024-05-01"]) == 1 and final["2024-05-01"] != after["2024-05-01"]
            assert lake_rows(lake).height == values.height + more.height


def test_interval_zero_never_compacts(values: pl.DataFrame, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with (
        Spool(tmp_path / "spool", max_segment_age_s=3600) as spool,
        Lander(Lake(str(lake)), SpoolReader(tmp_path / "spool"), compact_interval_s=0) as lander,
    ):
        land_slices(lander, spool, values, 4)
        lander.compact_due()
        assert [len(v) for v in files_by_date(lake).values()] == [4]
        assert lander.stats.compactions == 0
