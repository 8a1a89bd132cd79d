"""SCD2 history for dimension tables: change, delete, reappear, idempotent reruns, and point-in-time reads.

The table is read back with deltalake's reader; as_of results are compared with exact expected rows.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import SCD_COLUMNS, Lake, LakeError, as_of

from .conftest import UTC, read_back

T1, T2, T3, T4 = (dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4))


def tags(rows: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"web_id": pl.String, "name": pl.String, "units": pl.String}, orient="row"
    )


SNAP1 = tags([("A", "sinusoid", "m"), ("B", "cdt158", "degC"), ("C", "ba:level", None)])
SNAP2 = tags([("A", "sinusoid", "m"), ("B", "cdt158", "K"), ("D", "new", "bar")])  # B changed, C gone, D new


def history(uri: str) -> list[tuple]:
    frame = read_back(uri).sort("web_id", "valid_from")
    return frame.select("web_id", "units", "valid_from", "valid_to", "is_current", "is_deleted").rows()


def test_change_delete_insert_in_one_commit(lake: Lake) -> None:
    t = lake.table("pi_points")
    first = t.scd2_merge(SNAP1, key=["web_id"], as_of=T1)
    second = t.scd2_merge(SNAP2, key=["web_id"], as_of=T2)
    assert (first.version, second.version) == (0, 1)
    assert [h["version"] for h in DeltaTable(t.uri).history()] == [1, 0]
    assert {k: second.metrics[k] for k in ("inserted", "changed", "deleted", "unchanged")} == {
        "inserted": 1,
        "changed": 1,
        "deleted": 1,
        "unchanged": 1,
    }
    assert history(t.uri) == [
        ("A", "m", T1, None, True, False),
        ("B", "degC", T1, T2, False, False),
        ("B", "K", T2, None, True, False),
        ("C", None, T1, T2, False, True),
        ("D", "bar", T2, None, True, False),
    ]
    assert set(SCD_COLUMNS) <= set(read_back(t.uri).columns)


def test_same_snapshot_again_is_a_no_op(lake: Lake) -> None:
    t = lake.table("pi_points")
    t.scd2_merge(SNAP1, key=["web_id"], as_of=T1)
    t.scd2_merge(SNAP2, key=["web_id"], as_of=T2)
    before = read_back(t.uri)
    rerun = t.scd2_merge(SNAP2, key=["web_id"], as_of=T3)
    assert rerun.version is None and rerun.rows_written == 0 and rerun.metrics["unchanged"] == 3
    assert DeltaTable(t.uri).version() == 1
    assert read_back(t.uri).equals(before)


def test_as_of_returns_the_snapshot_valid_at_a_time(lake: Lake) -> None:
    t = lake.table("pi_points")
    t.scd2_merge(SNAP1, key=["web_id"], as_of=T1)
    t.scd2_merge(SNAP2, key=["web_id"], as_of=T2)

    def units(ts: dt.datetime) -> list[tuple]:
        return as_of(t, ts).sort("web_id").select("web_id", "units").rows()

    assert units(T1 - dt.timedelta(microseconds=1)) == []
    assert units(T1) == [("A", "m"), ("B", "degC"), ("C", None)]
    assert units(T2 - dt.timedelta(microseconds=1)) == [("A", "m"), ("B", "degC"), ("C", None)]
    assert units(T2) == [("A", "m"), ("B", "K"), ("D", "bar")]  # valid_to is exclusive
    assert t.as_of(T4, columns=["web_id"]).sort("web_id")["web_id"].to_list() == ["A", "B", "D"]


def test_deleted_key_that_returns_gets_a_new_version(lake: Lake) -> None:
    t = lake.table("pi_points")
    t.scd2_merge(SNAP1, key=["web_id"], as_of=T1)
    t.scd2_merge(SNAP2, key=["web_id"], as_of=T2)
    t.scd2_merge(pl.concat([SNAP2, tags([("C", "ba:level", None)])]), key=["web_id"], as_of=T3)
    c_rows = [row for row in history(t.uri) if row[0] == "C"]
    assert c_rows == [("C", None, T1, T2, False, True), ("C", None, T3, None, True, False)]


def test_compare_subset_and_close_missing_false(lake: Lake) -> None:
    t = lake.table("pi_points")
    t.scd2_merge(SNAP1, key=["web_id"], compare=["name"], as_of=T1)
    # units changed for B but only name is compared; C missing but partial snapshots do not close rows.
    result = t.scd2_merge(SNAP2, key=["web_id"], compare=["name"], as_of=T2, close_missing=False)
    assert (
        result.metrics["changed"] == 0 and result.metrics["deleted"] == 0 and result.metrics["inserted"] == 1
    )
    current = t.to_polars(filters=pl.col("is_current")).sort("web_id")
    assert current.select("web_id", "units").rows() == [("A", "m"), ("B", "degC"), ("C", None), ("D", "bar")]


def test_composite_key_and_new_attribute_column(lake: Lake) -> None:
    t = lake.table("af_attributes")
    snap = pl.DataFrame(
        {"element": ["E1", "E1", "E2"], "attribute": ["a", "b", "a"], "value": [1.0, 2.0, 3.0]}
    )
    t.scd2_merge(snap, key=["element", "attribute"], as_of=T1)
    changed = snap.with_columns(
        value=pl.Series([1.0, 2.5, 3.0]), uom=pl.Series(["m", "m", "s"])
    )  # a new column changes every hash
    t.scd2_merge(changed, key=["element", "attribute"], compare=["value"], as_of=T2)
    now = t.as_of(T2).sort("element", "attribute")
    assert now.select("element", "attribute", "value", "uom").rows() == [
        ("E1", "a", 1.0, None),
        ("E1", "b", 2.5, "m"),
        ("E2", "a", 3.0, None),
    ]
    assert read_back(t.uri).height == 4


def test_bad_snapshots_are_refused(lake: Lake) -> None:
    t = lake.table("pi_points")
    with pytest.raises(LakeError, match="duplicate keys"):
        t.scd2_merge(pl.concat([SNAP1, SNAP1.head(1)]), key=["web_id"], as_of=T1)
    with pytest.raises(LakeError, match="null key values"):
        t.scd2_merge(tags([(None, "x", None)]), key=["web_id"], as_of=T1)  # type: ignore[list-item]
    with pytest.raises(LakeError, match="must not carry SCD columns"):
        t.scd2_merge(SNAP1.with_columns(is_current=pl.lit(True)), key=["web_id"], as_of=T1)
    t.scd2_merge(SNAP1, key=["web_id"], as_of=T2)
    with pytest.raises(LakeError, match="snapshots must be merged in time order"):
        t.scd2_merge(SNAP2, key=["web_id"], as_of=T1)
    assert DeltaTable(t.uri).version() == 0
