"""replace_window: exact half-open windows, idempotent reruns, rejected strays, partial replaces, partition pruning.

Every result is read back with deltalake's own reader (and the file list) rather than the lake library.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, LakeError, WindowError

from .conftest import DAY, at, delta_version, hour_of, read_back, values


def write_hour(table, frame: pl.DataFrame, hour: int, **kw):
    return table.replace_window(frame, column="timestamp", start=at(hour), end=at(hour + 1), **kw)


def test_replacing_one_hour_leaves_the_others_intact(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    for hour in range(3):
        write_hour(t, hour_of(hour, 1.0), hour)
    result = write_hour(t, hour_of(1, 2.0).head(3), 1)

    got = read_back(t.uri)
    expected = pl.concat([hour_of(0, 1.0), hour_of(1, 2.0).head(3), hour_of(2, 1.0)])
    assert got.equals(expected)
    assert (result.operation, result.version, result.rows_written, result.attempts) == (
        "replace_window",
        3,
        3,
        1,
    )
    assert result.files_added == 1 and result.files_removed == 1
    assert result.duration_s > 0
    assert DeltaTable(t.uri).history(1)[0]["operation"] == "WRITE"


def test_rerun_is_idempotent(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    for hour in range(3):
        write_hour(t, hour_of(hour, float(hour)), hour)
    before = read_back(t.uri)
    for _ in range(3):
        write_hour(t, hour_of(1, 1.0), 1)
    after = read_back(t.uri)
    assert after.equals(before)
    assert after.height == 12 and after.select("web_id", "timestamp").is_unique().all()


def test_window_boundaries_are_exact_around_midnight_with_microseconds(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    midnight = DAY
    edges = [
        midnight - dt.timedelta(microseconds=1),  # 23:59:59.999999 the day before: outside
        midnight,  # start: inside (inclusive)
        midnight + dt.timedelta(microseconds=1),
        midnight + dt.timedelta(hours=1, microseconds=-1),  # last microsecond of the window: inside
        midnight + dt.timedelta(hours=1),  # end: outside (exclusive)
    ]
    t.replace_window(
        values(edges, 1.0),
        column="timestamp",
        start=midnight - dt.timedelta(days=1),
        end=midnight + dt.timedelta(days=1),
    )
    t.replace_window(
        values([midnight + dt.timedelta(minutes=30)], 9.0), column="timestamp", start=midnight, end=at(1)
    )
    got = read_back(t.uri)
    assert got["timestamp"].to_list() == [edges[0], midnight + dt.timedelta(minutes=30), edges[4]]
    assert got["value"].to_list() == [1.0, 9.0, 1.0]


def test_window_in_another_timezone_is_the_same_instant(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    for hour in range(3):
        write_hour(t, hour_of(hour, 1.0), hour)
    plus2 = dt.timezone(dt.timedelta(hours=2))
    frame = hour_of(1, 5.0).with_columns(pl.col("timestamp").dt.convert_time_zone("Europe/Berlin"))
    t.replace_window(frame, column="timestamp", start=at(1).astimezone(plus2), end=at(2).astimezone(plus2))
    got = read_back(t.uri)
    assert got.filter(pl.col("value") == 5.0)["timestamp"].to_list() == hour_of(1, 0)["timestamp"].to_list()
    assert got.height == 12 and got.schema["timestamp"] == pl.Datetime("us", "UTC")


def test_rows_outside_the_window_are_rejected_and_nothing_is_written(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    write_hour(t, hour_of(0, 1.0), 0)
    stray = pl.concat([hour_of(1, 2.0), values([at(2)], 2.0)])  # 02:00 is the (exclusive) end
    with pytest.raises(
        WindowError, match=r"1 rows have timestamp outside the window \[2024-05-01T01:00:00\+00:00"
    ):
        write_hour(t, stray, 1)
    with pytest.raises(WindowError, match="outside the window"):
        write_hour(t, values([at(1), None], 2.0), 1)  # type: ignore[list-item]
    assert delta_version(t.uri) == 0
    assert read_back(t.uri).equals(hour_of(0, 1.0))


def test_bad_windows_and_columns_have_clear_errors(lake: Lake) -> None:
    t = lake.table("x")
    with pytest.raises(WindowError, match="naive"):
        t.replace_window(hour_of(0, 1), column="timestamp", start=dt.datetime(2024, 5, 1), end=at(1))
    with pytest.raises(WindowError, match="Empty or inverted window"):
        t.replace_window(hour_of(0, 1), column="timestamp", start=at(1), end=at(1))
    with pytest.raises(WindowError, match="'ts' is not in the data"):
        t.replace_window(hour_of(0, 1), column="ts", start=at(0), end=at(1))
    naive = hour_of(0, 1).with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    with pytest.raises(WindowError, match="must be a tz-aware Datetime"):
        t.replace_window(naive, column="timestamp", start=at(0), end=at(1))
    assert not t.exists()


def test_extra_predicate_replaces_only_the_named_points(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    t.replace_window(
        pl.concat([hour_of(0, 1.0, w) for w in ("A", "B", "C")]), column="timestamp", start=at(0), end=at(1)
    )
    result = t.replace_window(
        pl.concat([hour_of(0, 2.0, "A"), hour_of(0, 2.0, "B").head(1)]),
        column="timestamp",
        start=at(0),
        end=at(1),
        extra_predicate={"web_id": ["A", "B"]},
    )
    got = read_back(t.uri)
    by_point = got.group_by("web_id").agg(pl.len(), pl.col("value").max()).sort("web_id")
    assert by_point.rows() == [("A", 4, 2.0), ("B", 1, 2.0), ("C", 4, 1.0)]
    assert result.rows_written == 5
    with pytest.raises(WindowError, match="do not match extra_predicate"):
        t.replace_window(
            hour_of(0, 3.0, "C"), column="timestamp", start=at(0), end=at(1), extra_predicate={"web_id": "A"}
        )


def test_string_extra_predicate(lake: Lake) -> None:
    t = lake.table("multi_source")
    both = pl.concat([hour_of(0, 1.0).with_columns(source=pl.lit(s)) for s in ("x", "y")])
    t.replace_window(both, column="timestamp", start=at(0), end=at(1))
    t.replace_window(
        hour_of(0, 7.0).with_columns(source=pl.lit("x")).head(2),
        column="timestamp",
        start=at(0),
        end=at(1),
        extra_predicate="source = 'x'",
    )
    got = read_back(t.uri)
    assert got.group_by("source").agg(pl.len(), pl.col("value").sum()).sort("source").rows() == [
        ("x", 2, 14.0),
        ("y", 4, 4.0),
    ]
    with pytest.raises(WindowError, match="do not match extra_predicate"):
        t.replace_window(
            hour_of(0, 7.0).with_columns(source=pl.lit("y")),
            column="timestamp",
            start=at(0),
            end=at(1),
            extra_predicate="source = 'x'",
        )


def test_date_partitions_are_derived_and_untouched_partitions_keep_their_files(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    days = [DAY + dt.timedelta(days=d) for d in range(3)]
    for day in days:
        t.replace_window(
            pl.concat([hour_of(h, 1.0, day=day) for h in range(3)]),
            column="timestamp",
            start=day,
            end=day + dt.timedelta(days=1),
            partition_by=["date"],
        )
    files_before = {f for f in DeltaTable(t.uri).file_uris() if "/date=2024-05-02/" not in f}
    assert len(files_before) == 2
    result = t.replace_window(
        hour_of(1, 5.0, day=days[1]), column="timestamp", start=at(1, day=days[1]), end=at(2, day=days[1])
    )
    delta = DeltaTable(t.uri)
    assert delta.metadata().partition_columns == ["date"]
    assert files_before <= set(delta.file_uris())  # other days' files are the very same files
    assert result.files_removed == 1
    assert "date = '2024-05-02'::date" in delta.history(1)[0]["operationParameters"]["predicate"]
    got = read_back(t.uri)
    assert got["date"].to_list() == [d.date() for d in got["timestamp"].to_list()]
    assert got.filter(pl.col("value") == 5.0).height == 4 and got.height == 36
    with pytest.raises(LakeError, match=r"partitioned by \['date'\], not \['web_id'\]"):
        t.replace_window(hour_of(1, 5.0), column="timestamp", start=at(1), end=at(2), partition_by=["web_id"])


def test_window_spanning_two_days_prunes_a_date_range(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    start, end = at(22), at(2, day=DAY + dt.timedelta(days=1))
    frame = values([at(22), at(23, 59, 59, 999999), at(0, day=DAY + dt.timedelta(days=1))], 1.0)
    t.replace_window(frame, column="timestamp", start=start, end=end, partition_by=["date"])
    t.replace_window(frame.with_columns(value=pl.lit(2.0)), column="timestamp", start=start, end=end)
    predicate = DeltaTable(t.uri).history(1)[0]["operationParameters"]["predicate"]
    assert "date >= '2024-05-01'::date" in predicate and "date <= '2024-05-02'::date" in predicate
    assert read_back(t.uri)["value"].to_list() == [2.0, 2.0, 2.0]


def test_empty_input_clears_the_window_and_empty_first_write_needs_a_schema(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    with pytest.raises(LakeError, match="pass schema="):
        t.replace_window(iter([]), column="timestamp", start=at(0), end=at(1))
    created = t.replace_window([], column="timestamp", start=at(0), end=at(1), schema=hour_of(0, 0).schema)
    assert created.version == 0 and read_back(t.uri).height == 0
    for hour in range(2):
        write_hour(t, hour_of(hour, 1.0), hour)
    result = write_hour(t, iter([]), 0)
    assert result.rows_written == 0
    assert read_back(t.uri).equals(hour_of(1, 1.0))


def test_nanosecond_input_is_stored_as_microseconds(lake: Lake, tmp_path: Path) -> None:
    t = lake.table("ns")
    frame = hour_of(0, 1.0).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    write_hour(t, frame, 0)
    assert read_back(t.uri).schema["timestamp"] == pl.Datetime("us", "UTC")
    assert read_back(t.uri).equals(hour_of(0, 1.0))


def test_read_api_filters_and_projects(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    assert not t.exists() and t.version() is None
    for hour in range(3):
        write_hour(t, hour_of(hour, float(hour)), hour)
    got = t.to_polars(
        columns=["timestamp", "value"], filters=(pl.col("timestamp") >= at(1)) & (pl.col("timestamp") < at(2))
    )
    assert got.sort("timestamp").equals(hour_of(1, 1.0).select("timestamp", "value"))
    assert t.read(version=0).sort("timestamp").equals(hour_of(0, 0.0))
    assert t.version() == 2
