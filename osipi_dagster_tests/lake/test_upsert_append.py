"""upsert (merge on key) for small tables and append, both one commit each, read back independently.

Covers first-write creation, updates plus inserts, schema growth and key validation.
"""

from __future__ import annotations

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, LakeError

from .conftest import hour_of, read_back


def test_upsert_creates_then_updates_and_inserts(lake: Lake) -> None:
    t = lake.table("pi_data_servers")
    first = t.upsert(pl.DataFrame({"web_id": ["S1", "S2"], "name": ["a", "b"]}), key=["web_id"])
    second = t.upsert(
        pl.DataFrame({"web_id": ["S2", "S3"], "name": ["b2", "c"], "is_connected": [True, False]}),
        key=["web_id"],
    )
    assert (first.version, second.version) == (0, 1)
    assert second.metrics["num_target_rows_updated"] == 1 and second.metrics["num_target_rows_inserted"] == 1
    got = pl.from_arrow(DeltaTable(t.uri).to_pyarrow_table()).sort("web_id")
    assert got.rows() == [("S1", "a", None), ("S2", "b2", True), ("S3", "c", False)]
    with pytest.raises(LakeError, match="rows share a key"):
        t.upsert(pl.DataFrame({"web_id": ["S1", "S1"], "name": ["x", "y"]}), key=["web_id"])
    with pytest.raises(LakeError, match=r"key columns \['id'\] are not in the frame"):
        t.upsert(pl.DataFrame({"web_id": ["S1"]}), key=["id"])


def test_append_adds_rows_in_one_commit_per_call(lake: Lake) -> None:
    t = lake.table("pi_events")
    a = t.append(hour_of(0, 1.0))
    # The first chunk fixes the stream schema; later chunks may omit columns (written as null).
    b = t.append(iter([hour_of(2, 3.0).with_columns(note=pl.lit("late")), hour_of(1, 2.0)]))
    assert (a.version, a.rows_written) == (0, 4)
    assert (b.version, b.operation) == (1, "append")
    got = read_back(t.uri)
    assert got.height == 12
    assert got["note"].to_list() == [None] * 8 + ["late"] * 4
