"""Schema evolution: new columns are added, missing columns read as null, incompatible type changes are refused.

Type checks happen before any file is written, so a refused write leaves the table version unchanged.
"""

from __future__ import annotations

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, SchemaEvolutionError

from .conftest import at, delta_version, hour_of, read_back


def write(t, frame: pl.DataFrame, hour: int):
    return t.replace_window(frame, column="timestamp", start=at(hour), end=at(hour + 1))


def test_new_column_is_added_and_old_rows_read_null(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    write(t, hour_of(0, 1.0), 0)
    write(t, hour_of(1, 2.0).with_columns(quality=pl.lit("good"), digital_code=pl.lit(3, dtype=pl.Int32)), 1)
    schema = DeltaTable(t.uri).schema().to_arrow()
    assert [f.name for f in schema] == ["web_id", "timestamp", "value", "quality", "digital_code"]
    got = read_back(t.uri)
    assert got["quality"].to_list() == [None] * 4 + ["good"] * 4
    assert got["digital_code"].to_list() == [None] * 4 + [3] * 4


def test_data_missing_a_column_is_filled_with_nulls(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    write(t, hour_of(0, 1.0).with_columns(quality=pl.lit("good")), 0)
    write(t, hour_of(1, 2.0), 1)
    assert read_back(t.uri)["quality"].to_list() == ["good"] * 4 + [None] * 4


def test_widening_int_to_float_is_accepted(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    write(t, hour_of(0, 1.0), 0)
    write(t, hour_of(1, 0).with_columns(value=pl.lit(7, dtype=pl.Int32)), 1)
    got = read_back(t.uri)
    assert got.schema["value"] == pl.Float64 and got["value"].to_list() == [1.0] * 4 + [7.0] * 4


def test_incompatible_type_change_is_a_clear_error(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    write(t, hour_of(0, 1.0), 0)
    # delta-rs alone would silently cast these strings into the double column.
    with pytest.raises(SchemaEvolutionError, match="value: table has double, new data has large_string"):
        write(t, hour_of(0, 0).with_columns(value=pl.lit("4.0")), 0)
    with pytest.raises(SchemaEvolutionError, match="timestamp: table has timestamp"):
        t.append(hour_of(1, 1.0).with_columns(timestamp=pl.lit("2024-05-01")))
    assert delta_version(t.uri) == 0 and read_back(t.uri).equals(hour_of(0, 1.0))
