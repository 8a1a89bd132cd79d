"""DeltaTableRef: one Delta table and every write the platform does to it (window replace, SCD2, upsert, append).

Every write is one Delta commit, tagged with a write id so its version and metrics are found even under concurrency.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from osipi_dagster.lib.retry import RetryPolicy

from . import maintenance, scd2
from .errors import LakeConflictError, LakeError, TableNotFoundError, WindowError
from .frames import (
    ChunkStream,
    DataInput,
    Prepare,
    SchemaLike,
    check_compatible,
    is_replayable,
    iter_frames,
    to_polars_schema,
)
from .predicates import (
    ExtraPredicate,
    date_range_predicate,
    extra_predicate_sql,
    mapping_predicate,
    quote_ident,
    utc,
    window_bounds,
    window_predicate,
)

log = logging.getLogger(__name__)
WRITE_ID = "osipi.write_id"
DEFAULT_MAX_ATTEMPTS = 6
# A lost commit race: write again on the new version after a short jittered wait that spreads competing writers
# apart (not synchronisation). Streamed landing (lib/streaming/landing.py) retries its merges with the same policy.
COMMIT_RETRY = RetryPolicy(max_retries=DEFAULT_MAX_ATTEMPTS - 1, backoff_base_s=0.1, backoff_max_s=1.0)


@dataclass(frozen=True)
class WriteResult:
    """What one lake write did. rows_deleted is None when delta-rs does not report it (plain writes)."""

    table: str
    operation: str
    version: int | None  # None when nothing was committed (e.g. an SCD2 snapshot with no change)
    rows_written: int
    rows_deleted: int | None
    files_added: int
    files_removed: int
    duration_s: float
    attempts: int = 1
    metrics: dict[str, Any] = field(default_factory=dict)


class _Retry(Exception):
    """Internal: the commit lost a race and the same write may be attempted again."""


@dataclass(frozen=True)
class DeltaTableRef:
    """A Delta table location; cheap to create, it opens the table on each call so it always sees the latest version."""

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)
    # How writes retry a lost commit race (tests replace its sleep); `max_attempts` of a write overrides its count.
    commit_retry: RetryPolicy = field(default=COMMIT_RETRY, repr=False, compare=False)

    # ------------------------------------------------------------------ reading

    @property
    def _options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri, storage_options=self._options)

    def delta(self, version: int | None = None) -> DeltaTable:
        """The deltalake.DeltaTable (latest, or a given version); TableNotFoundError if there is none."""
        try:
            return DeltaTable(self.uri, version=version, storage_options=self._options)
        except DeltaTableNotFound as exc:
            raise TableNotFoundError(f"No Delta table at {self.uri}: write to it first") from exc

    def version(self) -> int | None:
        """Latest committed version, or None when the table does not exist."""
        return self.delta().version() if self.exists() else None

    def schema(self) -> pa.Schema:
        return pa.schema(self.delta().schema().to_arrow())

    def partition_columns(self) -> list[str]:
        return list(self.delta().metadata().partition_columns)

    def scan(self, version: int | None = None) -> pl.LazyFrame:
        """Lazy polars scan; filters on it are pushed down to Delta file statistics and partitions."""
        return pl.scan_delta(self.delta(version))

    def to_polars(
        self,
        *,
        columns: Sequence[str] | None = None,
        filters: pl.Expr | None = None,
        version: int | None = None,
    ) -> pl.DataFrame:
        """Read the table (optionally a version) into polars; filters is a polars expression, e.g. a time window."""
        frame = self.scan(version)
        if filters is not None:
            frame = frame.filter(filters)
        if columns is not None:
            frame = frame.select(list(columns))
        return frame.collect()

    read = to_polars

    def as_of(self, ts: dt.datetime, *, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """SCD2 snapshot valid at ts (valid_from <= ts < coalesce(valid_to, inf))."""
        return as_of(self, ts, columns=columns)

    # ------------------------------------------------------------------ writing

    def replace_window(
        self,
        data: DataInput,
        *,
        column: str,
        start: dt.datetime,
        end: dt.datetime,
        partition_by: Sequence[str] | None = None,
        extra_predicate: ExtraPredicate | None = None,
        schema: SchemaLike | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        target_file_size: int | None = None,
    ) -> WriteResult:
        """Replace exactly the rows with start <= column < end (and extra_predicate) by data, in one commit.

        Rerunning with the same data gives the same table. Rows of data outside the window (or not matching a
        mapping extra_predicate) raise WindowError before anything is committed. A partition column named in
        partition_by that data lacks is derived as the UTC date of column. data may stream (iterable of chunks,
        RecordBatchReader); pass a zero-argument callable instead to let a lost commit race be retried.
        delta-rs buffers up to about one data file per partition before flushing, so target_file_size (bytes)
        also caps the writer's memory.
        """
        start_utc, end_utc = window_bounds(start, end)
        where = window_predicate(column, start_utc, end_utc)
        if extra_predicate is not None:
            where = f"{where} AND {extra_predicate_sql(extra_predicate)}"
        check_extra = extra_predicate_expr(extra_predicate)

        def attempt() -> WriteResult:
            exists = self.exists()
            parts = self._resolve_partitions(partition_by, exists)
            prepare = _window_prepare(column, start_utc, end_utc, parts, check_extra)
            predicate = None
            if exists:
                # Date partitions are derived from column, so their range is implied: stating it lets delta-rs
                # skip every other partition without reading file statistics.
                dates = [p for p in parts if pa.types.is_date32(self._partition_type(p))]
                predicate = " AND ".join(
                    [*(date_range_predicate(p, start_utc, end_utc) for p in dates), where]
                )
            return self._write(
                data,
                mode="overwrite",
                predicate=predicate,
                parts=parts,
                prepare=prepare,
                schema=schema,
                exists=exists,
                operation="replace_window",
                target_file_size=target_file_size,
            )

        return self._with_retries(attempt, data, max_attempts, "replace_window")

    def append(
        self,
        data: DataInput,
        *,
        partition_by: Sequence[str] | None = None,
        schema: SchemaLike | None = None,
        target_file_size: int | None = None,
    ) -> WriteResult:
        """Append rows in one commit (new columns are added to the table); blind appends do not conflict."""

        def attempt() -> WriteResult:
            exists = self.exists()
            parts = self._resolve_partitions(partition_by, exists)
            return self._write(
                data,
                mode="append",
                predicate=None,
                parts=parts,
                prepare=lambda f: f,
                schema=schema,
                exists=exists,
                operation="append",
                target_file_size=target_file_size,
            )

        return self._with_retries(attempt, data, DEFAULT_MAX_ATTEMPTS, "append")

    def upsert(
        self, frame: pl.DataFrame, *, key: Sequence[str], partition_by: Sequence[str] | None = None
    ) -> WriteResult:
        """Merge frame into the table on key: update matching rows, insert new ones (small tables)."""
        key = list(key)
        missing = [k for k in key if k not in frame.columns]
        if missing:
            raise LakeError(
                f"upsert into {self.uri}: key columns {missing} are not in the frame {frame.columns}"
            )
        dupes = int(frame.select(key).is_duplicated().sum())
        if dupes:
            raise LakeError(f"upsert into {self.uri}: {dupes} rows share a key {key}; deduplicate first")
        # Already a pyarrow Table: pa.table() of it would only import pandas (~0.2 s of CPU a process).
        source = frame.to_arrow()

        def attempt() -> WriteResult:
            if not self.exists():
                return self._write(
                    frame,
                    mode="append",
                    predicate=None,
                    parts=list(partition_by or []),
                    prepare=lambda f: f,
                    schema=None,
                    exists=False,
                    operation="upsert",
                )
            self._check_schema(source.schema)
            on = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in key)
            return self._merge(
                source,
                on,
                "upsert",
                frame.height,
                lambda m: m.when_matched_update_all().when_not_matched_insert_all(),
            )

        return self._with_retries(attempt, frame, DEFAULT_MAX_ATTEMPTS, "upsert")

    def scd2_merge(
        self,
        frame: pl.DataFrame,
        *,
        key: Sequence[str],
        compare: Sequence[str] | None = None,
        as_of: dt.datetime,
        close_missing: bool = True,
    ) -> WriteResult:
        """Apply a full snapshot as SCD type 2 history in one commit; an unchanged snapshot commits nothing.

        Adds valid_from, valid_to (null = current), is_current, is_deleted, row_hash. compare defaults to every
        non-key column. With close_missing, current keys absent from frame are closed with is_deleted = true.
        """
        key = list(key)
        compare = [c for c in frame.columns if c not in key] if compare is None else list(compare)
        as_of_utc = utc(as_of, "SCD2 as_of")
        scd2.validate_snapshot(frame, key, compare, self.uri)
        frame = frame.with_columns(
            pl.col(c).dt.cast_time_unit("us") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
        )

        def attempt() -> WriteResult:
            if not self.exists():
                rows = scd2.initial_rows(frame, compare, as_of_utc)
                return self._write(
                    rows,
                    mode="error",
                    predicate=None,
                    parts=[],
                    prepare=lambda f: f,
                    schema=None,
                    exists=False,
                    operation="scd2_merge",
                )
            began = time.monotonic()
            table = self.delta()
            current = (
                pl.scan_delta(table)
                .filter(pl.col(scd2.IS_CURRENT))
                .select([*key, scd2.ROW_HASH, scd2.VALID_FROM])
                .collect()
            )
            plan = scd2.plan_scd2(
                frame,
                current,
                key=key,
                compare=compare,
                as_of=as_of_utc,
                close_missing=close_missing,
                table=self.uri,
            )
            counts = {
                "inserted": plan.inserted,
                "changed": plan.changed,
                "deleted": plan.deleted,
                "unchanged": plan.unchanged,
            }
            if plan.actions.height == 0:
                return WriteResult(
                    self.uri, "scd2_merge", None, 0, 0, 0, 0, time.monotonic() - began, metrics=counts
                )
            source = plan.actions.to_arrow()
            self._check_schema(source.schema)
            on = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(scd2.merge_key(k))}" for k in key)
            on += f" AND t.{scd2.IS_CURRENT} = true"
            target_cols = [c for c in plan.actions.columns if not c.startswith("_scd_")]

            def close(deleted: bool) -> dict[str, str]:
                return {
                    scd2.VALID_TO: f"s.{scd2.AS_OF}",
                    scd2.IS_CURRENT: "false",
                    scd2.IS_DELETED: "true" if deleted else "false",
                }

            result = self._merge(
                source,
                on,
                "scd2_merge",
                plan.inserted + plan.changed,
                lambda m: (
                    m.when_matched_update(close(False), predicate=f"s.{scd2.ACTION} = 'close'")
                    .when_matched_update(close(True), predicate=f"s.{scd2.ACTION} = 'delete'")
                    .when_not_matched_insert(
                        {quote_ident(c): f"s.{quote_ident(c)}" for c in target_cols},
                        predicate=f"s.{scd2.ACTION} = 'insert'",
                    )
                ),
                table=table,
            )
            return replace(result, metrics={**result.metrics, **counts})

        return self._with_retries(attempt, frame, DEFAULT_MAX_ATTEMPTS, "scd2_merge")

    # ------------------------------------------------------------------ maintenance

    def optimize(
        self, *, z_order: Sequence[str] | None = None, target_size: int | None = None
    ) -> dict[str, Any]:
        """Compact small files (or z-order by columns, e.g. ["web_id", "timestamp"]); returns delta-rs metrics."""
        return maintenance.optimize(self.delta(), z_order=z_order, target_size=target_size)

    def vacuum(
        self, *, retention_hours: int = 168, enforce_retention: bool = True, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete files no longer referenced by versions newer than retention_hours."""
        return maintenance.vacuum(
            self.delta(),
            retention_hours=retention_hours,
            enforce_retention=enforce_retention,
            dry_run=dry_run,
        )

    def table_stats(self) -> dict[str, Any]:
        """version, files, rows, size_bytes, partition_columns from the Delta log (no data files read)."""
        return maintenance.table_stats(self.delta())

    # ------------------------------------------------------------------ internals

    def _partition_type(self, name: str) -> pa.DataType:
        return self.schema().field(name).type

    def _resolve_partitions(self, partition_by: Sequence[str] | None, exists: bool) -> list[str]:
        if not exists:
            return list(partition_by or [])
        actual = self.partition_columns()
        if partition_by is not None and list(partition_by) != actual:
            raise LakeError(
                f"Delta table {self.uri} is partitioned by {actual}, not {list(partition_by)}: "
                "partitioning is fixed at creation; pass the table's partition_by or write to a new table"
            )
        return actual

    def _check_schema(self, new_schema: pa.Schema) -> None:
        check_compatible(self.uri, self.schema(), new_schema)

    def _write(
        self,
        data: DataInput,
        *,
        mode: str,
        predicate: str | None,
        parts: list[str],
        prepare: Prepare,
        schema: SchemaLike | None,
        exists: bool,
        operation: str,
        target_file_size: int | None = None,
    ) -> WriteResult:
        began = time.monotonic()
        stream = ChunkStream(iter_frames(data), prepare=prepare, schema=schema)
        if stream.schema is None:
            if not exists:
                raise LakeError(
                    f"Cannot create Delta table {self.uri} from empty input: pass schema= so the table can be created"
                )
            stream = ChunkStream(iter([]), prepare=prepare, schema=to_polars_schema(self.schema()))
        if exists:
            self._check_schema(stream.schema)  # type: ignore[arg-type]
        write_id = uuid.uuid4().hex
        try:
            write_deltalake(
                self.uri,
                stream.reader(),
                mode="error" if not exists else mode,  # type: ignore[arg-type]
                predicate=predicate,
                partition_by=parts or None,
                schema_mode="merge" if exists else None,
                storage_options=self._options,
                target_file_size=target_file_size,
                commit_properties=CommitProperties(custom_metadata={WRITE_ID: write_id}),
            )
        except Exception as exc:
            if stream.error is not None:
                raise stream.error from None
            if isinstance(exc, CommitFailedError) or (not exists and self.exists()):
                raise _Retry(str(exc)) from exc
            raise LakeError(f"Delta {operation} to {self.uri} failed: {exc}") from exc
        version, metrics = self._find_commit(write_id)
        return WriteResult(
            table=self.uri,
            operation=operation,
            version=version,
            rows_written=stream.rows,
            rows_deleted=metrics.get("num_deleted_rows"),
            files_added=int(metrics.get("num_added_files", 0)),
            files_removed=int(metrics.get("num_removed_files", 0)),
            duration_s=time.monotonic() - began,
            metrics=metrics,
        )

    def _merge(
        self,
        source: pa.Table,
        on: str,
        operation: str,
        rows_written: int,
        clauses: Callable[[Any], Any],
        table: DeltaTable | None = None,
    ) -> WriteResult:
        began = time.monotonic()
        write_id = uuid.uuid4().hex
        table = table or self.delta()
        try:
            merger = table.merge(
                source,
                on,
                source_alias="s",
                target_alias="t",
                merge_schema=True,
                commit_properties=CommitProperties(custom_metadata={WRITE_ID: write_id}),
            )
            metrics = clauses(merger).execute()
        except CommitFailedError as exc:
            raise _Retry(str(exc)) from exc
        except DeltaError as exc:
            raise LakeError(f"Delta {operation} into {self.uri} failed: {exc}") from exc
        version, _ = self._find_commit(write_id)
        return WriteResult(
            table=self.uri,
            operation=operation,
            version=version,
            rows_written=rows_written,
            rows_deleted=int(metrics.get("num_target_rows_deleted", 0)),
            files_added=int(metrics.get("num_target_files_added", 0)),
            files_removed=int(metrics.get("num_target_files_removed", 0)),
            duration_s=time.monotonic() - began,
            metrics=dict(metrics),
        )

    def _find_commit(self, write_id: str) -> tuple[int, dict[str, Any]]:
        # Other writers may have committed after us, so the newest commit is not necessarily ours.
        for limit in (20, None):
            for entry in self.delta().history(limit):
                if entry.get(WRITE_ID) == write_id:
                    return int(entry["version"]), dict(entry.get("operationMetrics") or {})
        raise LakeError(
            f"Write {write_id} to {self.uri} succeeded but its commit is missing from the Delta log"
        )

    def _with_retries(
        self, attempt: Callable[[], WriteResult], data: Any, max_attempts: int, op: str
    ) -> WriteResult:
        replayable = is_replayable(data)
        attempts = replace(self.commit_retry, max_retries=max(0, max_attempts - 1)).attempts()
        while True:
            try:
                result = attempt()
            except _Retry as exc:
                if not replayable:
                    raise LakeConflictError(
                        f"{op} on {self.uri} lost a commit race to a concurrent writer and its input is a single-use "
                        "iterator, so it cannot be retried: pass a zero-argument callable that re-creates the "
                        f"iterator, or rerun the step ({exc})"
                    ) from exc
                delay = attempts.next_delay()
                if delay is None:
                    raise LakeConflictError(
                        f"{op} on {self.uri} lost the commit race {attempts.made} times to concurrent writers; "
                        f"last error: {exc}"
                    ) from exc
                log.info(
                    "%s on %s: concurrent commit, retrying (attempt %d/%d)",
                    op,
                    self.uri,
                    attempts.made,
                    max_attempts,
                )
                attempts.wait(delay)
                continue
            return replace(result, attempts=attempts.made)


def extra_predicate_expr(extra: ExtraPredicate | None) -> pl.Expr | None:
    """A polars expression equivalent to extra_predicate (rows a replace with it covers), or None when there is
    none or polars cannot parse it; replace_window rejects non-matching rows with it before delta-rs sees them."""
    if extra is None:
        return None
    if isinstance(extra, str):
        try:
            return pl.sql_expr(extra)
        except Exception:
            # Not parseable by polars' SQL dialect: delta-rs still refuses rows that fail the predicate.
            return None
    mapping_predicate(extra)  # validates values early
    checks = [
        pl.col(c).is_in(list(v))
        if not isinstance(v, str | bytes) and hasattr(v, "__iter__")
        else pl.col(c) == v
        for c, v in extra.items()
    ]
    return pl.all_horizontal(checks)


def _window_prepare(
    column: str, start: dt.datetime, end: dt.datetime, parts: list[str], extra: pl.Expr | None
) -> Prepare:
    def prepare(frame: pl.DataFrame) -> pl.DataFrame:
        dtype = frame.schema.get(column)
        if dtype is None:
            raise WindowError(f"Window column {column!r} is not in the data (columns: {frame.columns})")
        if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
            raise WindowError(
                f"Window column {column!r} must be a tz-aware Datetime (UTC), got {dtype}: "
                "use pl.col(...).dt.replace_time_zone('UTC') for naive UTC values"
            )
        ts = pl.col(column)
        if dtype.time_zone != "UTC":
            frame = frame.with_columns(ts.dt.convert_time_zone("UTC"))
        derived = [pl.col(column).dt.date().alias(p) for p in parts if p not in frame.columns]
        frame = frame.with_columns(derived) if derived else frame
        if frame.height == 0:
            return frame
        # The window and partition checks as one pass that counts offending rows; rows are read only to report.
        date_parts = [p for p in parts if frame.schema[p] == pl.Date]
        counts = frame.select(
            (~((ts >= start) & (ts < end)).fill_null(False)).sum().alias("_outside"),
            *((pl.col(p) != ts.dt.date()).sum().alias(f"_part_{i}") for i, p in enumerate(date_parts)),
        ).row(0, named=True)
        if counts["_outside"]:
            outside = frame.filter(~((ts >= start) & (ts < end)).fill_null(False))
            lo, hi = outside[column].min(), outside[column].max()
            raise WindowError(
                f"{outside.height} rows have {column} outside the window [{start.isoformat()}, {end.isoformat()}) "
                f"(offending range {lo} .. {hi}, nulls included): filter the data to the window before writing"
            )
        if extra is not None:
            bad = frame.filter(~extra.fill_null(False)).height
            if bad:
                raise WindowError(f"{bad} rows do not match extra_predicate; they would escape the replace")
        for i, p in enumerate(date_parts):
            wrong = counts[f"_part_{i}"]
            if wrong:
                raise WindowError(
                    f"{wrong} rows have partition {p!r} different from the UTC date of {column!r}"
                )
        return frame

    return prepare


def as_of(table: DeltaTableRef, ts: dt.datetime, *, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """The SCD2 snapshot of table valid at ts: rows with valid_from <= ts < coalesce(valid_to, inf)."""
    return table.to_polars(filters=scd2.as_of_filter(utc(ts, "as_of timestamp")), columns=columns)
