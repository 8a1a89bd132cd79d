"""Streaming writes: many chunks land in one commit with bounded memory; a failing stream commits nothing.

Memory is measured with pyarrow's allocator, which owns every input batch produced by the test generator.
"""

from __future__ import annotations

import datetime as dt
import gc
import weakref

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake, SchemaEvolutionError, WindowError

from .conftest import DAY, at, delta_version, hour_of, read_back

CHUNKS, ROWS = 20, 50_000
SCHEMA = pa.schema(
    [("web_id", pa.large_string()), ("timestamp", pa.timestamp("us", tz="UTC")), ("value", pa.float64())]
)
START_US = int(DAY.timestamp() * 1_000_000)


def batch(index: int) -> pa.RecordBatch:
    ts = START_US + np.arange(index * ROWS, (index + 1) * ROWS, dtype=np.int64) * 1000  # 1 ms apart
    return pa.record_batch(
        [
            pa.array(np.full(ROWS, f"P{index % 4}", dtype=object), type=pa.large_string()),
            pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            pa.array(np.arange(ROWS, dtype=np.float64) + index),
        ],
        schema=SCHEMA,
    )


def test_twenty_chunks_stream_into_one_commit_with_bounded_memory(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    t.replace_window(hour_of(0, 1.0), column="timestamp", start=at(0), end=at(1))  # version 0
    refs: list[weakref.ref[pl.DataFrame]] = []
    alive_when_pulled: list[int] = []

    def chunk(index: int) -> pl.DataFrame:
        frame = pl.from_arrow(batch(index))
        assert isinstance(frame, pl.DataFrame)
        refs.append(weakref.ref(frame))
        return frame

    def produce():
        for index in range(CHUNKS):
            gc.collect()
            # Chunks still referenced when the writer asks for the next one: 20 if anything buffered the stream.
            alive_when_pulled.append(sum(ref() is not None for ref in refs))
            yield chunk(index)

    result = t.replace_window(
        produce(), column="timestamp", start=at(0), end=at(1), target_file_size=4_000_000
    )
    assert len(alive_when_pulled) == CHUNKS
    assert max(alive_when_pulled) <= 2, alive_when_pulled
    assert (result.version, result.rows_written) == (1, CHUNKS * ROWS)
    history = DeltaTable(t.uri).history()
    assert [h["version"] for h in history] == [1, 0]  # the twenty chunks are one commit
    got = pl.from_arrow(DeltaTable(t.uri).to_pyarrow_table())
    assert got.height == CHUNKS * ROWS
    assert got["timestamp"].min() == DAY and got["value"].sum() == sum(
        float(np.arange(ROWS).sum() + i * ROWS) for i in range(CHUNKS)
    )


def test_record_batch_reader_input(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    reader = pa.RecordBatchReader.from_batches(SCHEMA, (batch(i) for i in range(3)))
    result = t.replace_window(reader, column="timestamp", start=at(0), end=at(1))
    got = read_back(t.uri)
    assert result.rows_written == 3 * ROWS and got.height == 3 * ROWS
    assert got["timestamp"].is_unique().all() and got.schema["web_id"] == pl.String


def test_iterable_of_polars_chunks_with_a_declared_schema(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    chunks = (hour_of(h, float(h)) for h in range(3))
    schema = {
        "web_id": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "value": pl.Float64,
        "quality": pl.String,
    }
    result = t.replace_window(chunks, column="timestamp", start=at(0), end=at(3), schema=schema)
    got = read_back(t.uri)
    assert result.rows_written == 12 and got.columns == ["web_id", "timestamp", "value", "quality"]
    assert got["quality"].null_count() == 12 and got["value"].to_list() == [0.0] * 4 + [1.0] * 4 + [2.0] * 4


def test_iterator_failing_midway_leaves_the_previous_version(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    for hour in range(2):
        t.replace_window(hour_of(hour, 1.0), column="timestamp", start=at(hour), end=at(hour + 1))
    before = read_back(t.uri)

    class SourceDown(RuntimeError):
        pass

    def failing():
        for index in range(5):
            if index == 3:
                raise SourceDown("PI Web API went away after 3 chunks")
            yield values_in_hour_zero(index)

    with pytest.raises(SourceDown, match="went away after 3 chunks"):
        t.replace_window(failing(), column="timestamp", start=at(0), end=at(1))
    assert delta_version(t.uri) == 1
    assert read_back(t.uri).equals(before)


def values_in_hour_zero(index: int) -> pl.DataFrame:
    return hour_of(0, 100.0 + index).with_columns(pl.col("timestamp") + dt.timedelta(seconds=index))


def test_stray_row_in_a_late_chunk_aborts_the_whole_stream(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    t.replace_window(hour_of(0, 1.0), column="timestamp", start=at(0), end=at(1))
    chunks = [hour_of(0, 2.0), hour_of(0, 3.0), hour_of(1, 4.0)]
    with pytest.raises(WindowError, match="4 rows have timestamp outside the window"):
        t.replace_window(iter(chunks), column="timestamp", start=at(0), end=at(1))
    assert delta_version(t.uri) == 0 and read_back(t.uri).equals(hour_of(0, 1.0))


def test_chunk_that_does_not_fit_the_stream_schema_is_rejected(lake: Lake) -> None:
    t = lake.table("pi_timeseries")
    chunks = [hour_of(0, 1.0), hour_of(0, 2.0).with_columns(extra=pl.lit(1))]
    with pytest.raises(SchemaEvolutionError, match=r"Chunk 1 has columns \['extra'\]"):
        t.replace_window(chunks, column="timestamp", start=at(0), end=at(1))
    bad_type = [hour_of(0, 1.0), hour_of(0, 2.0).with_columns(value=pl.lit("high"))]
    with pytest.raises(SchemaEvolutionError, match="Chunk 1 does not fit the stream schema"):
        t.replace_window(bad_type, column="timestamp", start=at(0), end=at(1))
    assert not t.exists()
