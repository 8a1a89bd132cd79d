"""Turn any supported input (DataFrame, Arrow table/reader, iterable of chunks, or a factory) into one Arrow stream.

Each chunk is normalised and validated as it passes, so a huge partition reaches delta-rs with bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from .errors import SchemaEvolutionError

Chunk = pl.DataFrame | pa.Table | pa.RecordBatch
# A callable is a factory: it is called once per attempt, which is what makes retries of streamed input possible.
DataInput = Chunk | pl.LazyFrame | pa.RecordBatchReader | Iterable[Chunk] | Callable[[], Any]
SchemaLike = pa.Schema | pl.Schema | Mapping[str, Any]
Prepare = Callable[[pl.DataFrame], pl.DataFrame]


def is_replayable(data: Any) -> bool:
    """True when the input can be read again for a retry (single-use iterators and readers cannot)."""
    if callable(data) and not isinstance(data, pl.DataFrame | pl.LazyFrame | pa.Table | pa.RecordBatch):
        return True
    return isinstance(data, pl.DataFrame | pl.LazyFrame | pa.Table | pa.RecordBatch | Sequence)


def iter_frames(data: DataInput) -> Iterator[pl.DataFrame]:
    """Yield polars frames lazily from any supported input; a factory is called here (once per call)."""
    if callable(data) and not isinstance(data, pl.DataFrame | pl.LazyFrame | pa.Table | pa.RecordBatch):
        data = data()
    if isinstance(data, pl.DataFrame):
        yield data
    elif isinstance(data, pl.LazyFrame):
        yield data.collect()
    elif isinstance(data, pa.Table | pa.RecordBatch):
        yield _from_arrow(data)
    elif isinstance(data, pa.RecordBatchReader):
        for batch in data:
            yield _from_arrow(batch)
    elif hasattr(data, "__arrow_c_stream__"):
        # arro3 / other Arrow PyCapsule producers.
        for batch in pa.RecordBatchReader.from_stream(data):
            yield _from_arrow(batch)
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes | Mapping):
        for index, item in enumerate(data):
            if isinstance(item, pl.DataFrame):
                yield item
            elif isinstance(item, pa.Table | pa.RecordBatch):
                yield _from_arrow(item)
            else:
                raise TypeError(
                    f"Chunk {index} is a {type(item).__name__}: an iterable input must yield polars DataFrames, "
                    "pyarrow Tables or RecordBatches"
                )
    else:
        raise TypeError(
            f"Unsupported data type {type(data).__name__}: pass a polars DataFrame, a pyarrow Table or "
            "RecordBatchReader, an iterable of DataFrames, or a zero-argument callable returning one of these"
        )


def _from_arrow(data: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def to_polars_schema(schema: SchemaLike) -> pl.Schema:
    if isinstance(schema, pa.Schema):
        # From no batches: Schema.empty_table() would import pandas (~0.2 s of CPU a process).
        return _from_arrow(pa.Table.from_batches([], schema=schema)).schema
    return pl.Schema(schema)


def normalise_datetimes(frame: pl.DataFrame) -> pl.DataFrame:
    """Delta stores microseconds: cast every Datetime column to "us" (tz kept) so chunks share one schema."""
    casts = [
        pl.col(name).dt.cast_time_unit("us")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us"
    ]
    return frame.with_columns(casts) if casts else frame


class ChunkStream:
    """A single-use Arrow stream over prepared chunks with one fixed schema; counts rows, remembers the first error.

    pyarrow's RecordBatchReader.from_batches does not check batches against its schema (a mismatch can crash the
    process inside delta-rs), so every batch is cast to the fixed schema here.
    """

    def __init__(self, frames: Iterator[pl.DataFrame], *, prepare: Prepare, schema: SchemaLike | None = None):
        self._frames = frames
        self._prepare = prepare
        self.rows = 0
        self.chunks = 0
        self.error: BaseException | None = None
        self._first: pl.DataFrame | None = None
        self.schema: pa.Schema | None = None
        if schema is not None:
            empty = pl.DataFrame(schema=to_polars_schema(schema))
            self.schema = self._arrow(self._prepare(normalise_datetimes(empty)))
        first = next(self._frames, None)
        if first is not None:
            self._first = self._prepare(normalise_datetimes(first))
            if self.schema is None:
                self.schema = self._arrow(self._first)

    @staticmethod
    def _arrow(frame: pl.DataFrame) -> pa.Schema:
        return frame.head(0).to_arrow().schema

    def reader(self) -> pa.RecordBatchReader:
        if self.schema is None:
            raise ValueError("ChunkStream has no schema: the input was empty and no schema= was given")
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                yield from self._emit(first)
            for frame in self._frames:
                yield from self._emit(self._prepare(normalise_datetimes(frame)))
        except BaseException as exc:
            # delta-rs flattens Python errors raised inside the stream into a string; keep the original to re-raise.
            self.error = exc
            raise

    def _emit(self, frame: pl.DataFrame) -> Iterator[pa.RecordBatch]:
        assert self.schema is not None
        index = self.chunks
        self.chunks += 1
        extra = [c for c in frame.columns if c not in self.schema.names]
        if extra:
            raise SchemaEvolutionError(
                f"Chunk {index} has columns {extra} that the stream schema {self.schema.names} lacks: "
                "pass schema= with every column, or put the widest chunk first"
            )
        table = frame.to_arrow()
        for field in self.schema:
            if field.name not in table.column_names:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        try:
            table = table.select(self.schema.names).cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaEvolutionError(
                f"Chunk {index} does not fit the stream schema ({exc}); chunk schema: {table.schema}"
            ) from exc
        self.rows += table.num_rows
        yield from table.to_batches()


def _canonical(t: pa.DataType) -> tuple[Any, ...]:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return ("string",)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return ("binary",)
    if pa.types.is_timestamp(t):
        return ("timestamp", t.tz is not None)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return ("list", _canonical(t.value_type))
    if pa.types.is_struct(t):
        return ("struct",)
    return (str(t),)


def _widens(table_t: pa.DataType, new_t: pa.DataType) -> bool:
    """Can values of new_t be stored in an existing column of table_t without loss or reinterpretation?"""
    if pa.types.is_null(new_t) or (
        _canonical(table_t) == _canonical(new_t) and not pa.types.is_struct(table_t)
    ):
        return True
    if pa.types.is_struct(table_t) and pa.types.is_struct(new_t):
        fields = {f.name: f.type for f in table_t}
        return all(f.name not in fields or _widens(fields[f.name], f.type) for f in new_t)
    if pa.types.is_integer(table_t) and pa.types.is_integer(new_t):
        same_sign = pa.types.is_signed_integer(table_t) == pa.types.is_signed_integer(new_t)
        unsigned_into_wider_signed = (
            pa.types.is_signed_integer(table_t) and table_t.bit_width > new_t.bit_width
        )
        return (same_sign and table_t.bit_width >= new_t.bit_width) or unsigned_into_wider_signed
    if pa.types.is_float64(table_t):
        return pa.types.is_float32(new_t) or (pa.types.is_integer(new_t) and new_t.bit_width <= 32)
    return False


def check_compatible(table_name: str, table_schema: pa.Schema, new_schema: pa.Schema) -> None:
    """Raise SchemaEvolutionError listing every existing column whose type the new data would change."""
    existing = {f.name: f.type for f in table_schema}
    problems = [
        f"{f.name}: table has {existing[f.name]}, new data has {f.type}"
        for f in new_schema
        if f.name in existing and not _widens(existing[f.name], f.type)
    ]
    if problems:
        raise SchemaEvolutionError(
            f"Incompatible column types for Delta table {table_name}: {'; '.join(problems)}. "
            "Only new columns and widening (int→larger int, int/float32→float64) evolve in place: cast the "
            "data to the table type, or write to a new table"
        )
