"""The stream table's Delta log stays bounded: one commit per landing, a checkpoint every `delta.checkpointInterval`
commits (delta-rs' post-commit hook), and at each checkpoint the commit files older than the retention the lander
set are deleted. Real landings of PI's values; the table read back with polars' Delta reader.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import SpoolReader
from osipi_dagster.lib.streaming.__main__ import _lander, parse_args
from osipi_dagster.lib.streaming.compaction import LOG_CLEANUP, LOG_RETENTION
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster.lib.streaming.reports import landing_commits, open_table
from osipi_dagster.lib.streaming.spool import Spool
from osipi_dagster_tests.streaming.helpers import KEY
from osipi_dagster_tests.streaming.test_landing import spooled

START = datetime(2024, 5, 1, 6, tzinfo=UTC)
LANDINGS = 200
INTERVAL = 10  # delta.checkpointInterval set on the table (delta-rs' default is 100)


@pytest.fixture(scope="module")
def values(emulator) -> pl.DataFrame:
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        ids = pl.concat(list(client.iter_points(client.data_servers()[0])))["web_id"].to_list()[:10]
        return client.recorded(ids, START, START + timedelta(hours=2)).sort("timestamp", "web_id", "ordinal")


def log_files(table: Path) -> dict[str, list[str]]:
    names = sorted(os.listdir(table / "_delta_log"))
    return {
        "json": [n for n in names if n.endswith(".json")],
        "checkpoints": [n for n in names if ".checkpoint." in n],
    }


def land(lander: Lander, spool: Spool, frame: pl.DataFrame) -> None:
    spool.append(spooled(frame))
    spool.seal()
    report = lander.land_once()
    assert report is not None and report.inserted == frame.height


def test_log_is_checkpointed_and_expired_commits_are_cleaned(tmp_path: Path, values: pl.DataFrame) -> None:
    per = values.height // (LANDINGS + INTERVAL)
    assert per >= 1
    slices = [values.slice(i * per, per) for i in range(LANDINGS + INTERVAL - 1)]
    slices.append(values.slice((LANDINGS + INTERVAL - 1) * per))
    lake = Lake(str(tmp_path / "lake"))
    path = tmp_path / "lake" / "pi_timeseries"
    with (
        Spool(tmp_path / "spool", max_segment_age_s=3600) as spool,
        Lander(lake, SpoolReader(tmp_path / "spool"), compact_interval_s=0) as lander,
    ):
        land(lander, spool, slices[0])
        config = DeltaTable(str(path)).metadata().configuration
        # The lander's default retention (48 h), set after its first commit.
        assert config[LOG_RETENTION] == "interval 172800 seconds" and config[LOG_CLEANUP] == "true"
        DeltaTable(str(path)).alter.set_table_properties({"delta.checkpointInterval": str(INTERVAL)})
        for frame in slices[1:LANDINGS]:
            land(lander, spool, frame)
        before = log_files(path)
        version = DeltaTable(str(path)).version()
        # Every commit is still there (none is older than 48 h), and readers start from a checkpoint.
        assert len(before["json"]) == version + 1 > LANDINGS
        assert len(before["checkpoints"]) >= LANDINGS // INTERVAL - 1
        assert (path / "_delta_log" / "_last_checkpoint").exists()

        # Three days later (the log files back-dated): the next checkpoint deletes what expired.
        old = time.time() - 3 * 86400
        for name in os.listdir(path / "_delta_log"):
            os.utime(path / "_delta_log" / name, (old, old))
        for frame in slices[LANDINGS:]:
            land(lander, spool, frame)
        after = log_files(path)
        assert (
            len(after["json"]) <= 2 * INTERVAL + 1
        )  # back to the last expired checkpoint, and what followed
        assert 1 <= len(after["checkpoints"]) <= 2
        assert DeltaTable(str(path)).version() == version + INTERVAL

    table = pl.read_delta(str(path))
    assert table.height == values.height
    assert table.filter(pl.struct(KEY).is_duplicated()).height == 0
    cols = [*KEY, "value", "good"]
    assert table.select(cols).sort(KEY).equals(values.select(cols).sort(KEY))
    # The report sensor still reads the landings after its last reported version.
    commits, latest, missed = landing_commits(open_table(lake.table("pi_timeseries")), version, 100)
    assert [c.version for c in commits] == list(range(version + 1, version + INTERVAL + 1))
    assert latest == version + INTERVAL and missed == 0


def test_log_retention_option(tmp_path: Path) -> None:
    def lander(*extra: str) -> Lander:
        args = parse_args(["land", "--spool", str(tmp_path / "spool"), *extra])
        return _lander(args, Lake(str(tmp_path / "lake")), SpoolReader(tmp_path / "spool"))

    (tmp_path / "spool").mkdir()
    with lander() as default:
        assert default.log_retention_hours == 48.0
    with lander("--log-retention-hours", "0") as keep:
        assert keep.log_retention_hours is None  # the table's own delta.logRetentionDuration is left alone
    with pytest.raises(ValueError, match="log_retention_hours must be at least 1"):
        lander("--log-retention-hours", "0.5")
