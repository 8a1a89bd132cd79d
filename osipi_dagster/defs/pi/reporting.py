"""What PI assets tell the Dagster UI: materialization metadata, write figures, and failures the operator fixes.

Metadata is built from what the asset already holds in memory, so reporting never re-reads a table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import dagster as dg
import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef, WriteResult
from osipi_dagster.lib.lake.frames import to_polars_schema
from osipi_dagster.lib.landing import LandingError

PREVIEW_ROWS = 5


def column_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


def table_schema(ref: DeltaTableRef) -> pl.Schema:
    """The Delta table's actual schema (as polars types), read from its log after the write: what the schema-drift
    checks compare, so a column added by schema evolution or by another writer shows up."""
    return to_polars_schema(ref.schema())


def markdown_preview(frame: pl.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    """The first rows as a GitHub markdown table (list columns joined, long text cut)."""
    head = frame.head(rows)
    if head.width == 0:
        return "_no columns_"

    def cell(value: object) -> str:
        text = (
            ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        )
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 60 else text[:57] + "..."

    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if head.height == 0:
        lines.append("| " + " | ".join("" for _ in head.columns) + " |")
    return "\n".join(lines)


def table_metadata(
    *, ref: DeltaTableRef, row_count: int, preview: pl.DataFrame, **extra: object
) -> dict[str, object]:
    """The standard keys every PI asset emits (the column schema from the table itself), plus asset figures."""
    return {
        "dagster/row_count": dg.MetadataValue.int(row_count),
        "dagster/column_schema": column_schema(table_schema(ref)),
        "dagster/table_name": ref.uri.rstrip("/").rsplit("/", 1)[-1],
        "table_uri": dg.MetadataValue.path(ref.uri),
        "preview": dg.MetadataValue.md(markdown_preview(preview)),
        **extra,
    }


def time_range(first: datetime | None, last: datetime | None) -> dict[str, object]:
    """Earliest/latest event time landed, as UI timestamps (absent when nothing landed)."""
    if first is None or last is None:
        return {}
    return {
        "first_timestamp": dg.MetadataValue.timestamp(first),
        "last_timestamp": dg.MetadataValue.timestamp(last),
    }


def write_result_metadata(result: WriteResult) -> dict[str, object]:
    """The lake writer's figures for this commit."""
    out: dict[str, object] = {
        "delta_version": result.version if result.version is not None else "unchanged",
        "rows_written": result.rows_written,
        "files_added": result.files_added,
        "files_removed": result.files_removed,
        "write_duration_s": round(result.duration_s, 3),
        "write_attempts": result.attempts,
    }
    if result.rows_deleted is not None:
        out["rows_deleted"] = result.rows_deleted
    for name in ("inserted", "changed", "deleted", "unchanged"):
        if name in result.metrics:
            out[f"scd2_{name}"] = int(result.metrics[name])
    return out


def total_rows(ref: DeltaTableRef, fallback: int) -> int:
    """Rows of the whole table from the Delta log (no data file is read), for `dagster/row_count` of partitioned
    assets; `fallback` (the rows of this window) when the log carries no counts."""
    rows = ref.table_stats().get("rows")
    return int(rows) if rows is not None else fallback


def figures(values: dict[str, object]) -> dict[str, object]:
    """Plain figures as metadata: dicts shown as JSON, the rest as they are."""
    return {k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in values.items()}


@contextmanager
def failures() -> Iterator[None]:
    """A `LandingError` (a name PI does not know, an upstream table not written yet) fails the step with its message
    as the failure's description, not as a stack trace: it is the operator's to fix."""
    try:
        yield
    except LandingError as err:
        raise dg.Failure(str(err)) from err
