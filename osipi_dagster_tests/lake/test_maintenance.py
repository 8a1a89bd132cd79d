"""Maintenance: optimize (compaction and z-order) and vacuum keep the content; table_stats match the Parquet files.

Stats are checked against pyarrow.parquet metadata of the files the Delta log references.
"""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, LakeError

from .conftest import at, hour_of, read_back


def small_files_table(lake: Lake):
    t = lake.table("pi_timeseries")
    for hour in range(4):
        for web_id in ("B", "A"):
            t.replace_window(
                hour_of(hour, float(hour), web_id),
                column="timestamp",
                start=at(hour),
                end=at(hour + 1),
                extra_predicate={"web_id": web_id},
            )
    return t


def test_table_stats_match_the_parquet_files(lake: Lake) -> None:
    t = small_files_table(lake)
    stats = t.table_stats()
    files = DeltaTable(t.uri).file_uris()
    assert stats["version"] == 7 and stats["files"] == len(files) == 8
    assert stats["rows"] == sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 32
    assert stats["size_bytes"] == sum(os.path.getsize(f) for f in files)
    assert stats["partition_columns"] == []


def test_optimize_zorder_and_vacuum_keep_content(lake: Lake) -> None:
    t = small_files_table(lake)
    before = read_back(t.uri)
    metrics = t.optimize(z_order=["web_id", "timestamp"])
    assert metrics["numFilesRemoved"] == 8 and metrics["numFilesAdded"] == 1 and metrics["version"] == 8
    assert read_back(t.uri).equals(before)
    assert t.table_stats()["files"] == 1

    with pytest.raises(LakeError, match="needs enforce_retention=False"):
        t.vacuum(retention_hours=0)
    dry = t.vacuum(retention_hours=0, enforce_retention=False, dry_run=True)
    on_disk_before = sum(1 for p in os.listdir(t.uri) if p.endswith(".parquet"))
    done = t.vacuum(retention_hours=0, enforce_retention=False)
    on_disk_after = sum(1 for p in os.listdir(t.uri) if p.endswith(".parquet"))
    # 8 removed by optimize + the files the replaces superseded earlier: none is referenced any more.
    assert dry["files_deleted"] == done["files_deleted"] == on_disk_before - on_disk_after
    assert on_disk_after == 1 and read_back(t.uri).equals(before)


def test_compaction_without_zorder(lake: Lake) -> None:
    t = small_files_table(lake)
    before = read_back(t.uri)
    metrics = t.optimize()
    assert metrics["numFilesAdded"] == 1 and metrics["z_order"] == []
    assert read_back(t.uri).equals(before)
    with pytest.raises(LakeError, match=r"unknown columns \['nope'\]"):
        t.optimize(z_order=["nope"])
