"""What PI assets tell the Dagster UI: materialization metadata and structured progress lines in run logs.

Metadata is built from what the asset already holds in memory, so reporting never re-reads a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef

PREVIEW_ROWS = 5


def column_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


def table_schema(ref: DeltaTableRef) -> pl.Schema:
    """The Delta table's actual schema (as polars types), read from its log after the write: what the schema-drift
    checks compare, so a column added by schema evolution or by another writer shows up."""
    return pl.Schema(pl.from_arrow(ref.schema().empty_table()).schema)  # type: ignore[union-attr]


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


@dataclass
class Progress:
    """Counts pages and rows flowing through a stream and logs a progress line at most every `every_s`.

    Long partitions (hours of 10k tags) otherwise look stuck in the UI; the rate lets an operator estimate the end.
    """

    log: Callable[[str], None]
    label: str
    total_pages: int | None = None
    every_s: float = 10.0
    pages: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_log: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.rows / self.elapsed_s

    def restart(self, total_pages: int | None) -> None:
        """Start counting again (a retried stream after a lost commit race re-reads every page)."""
        self.total_pages, self.pages, self.rows = total_pages, 0, 0
        self.started = self._last_log = time.monotonic()

    def track(self, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        for frame in frames:
            self.pages += 1
            self.rows += frame.height
            now = time.monotonic()
            if now - self._last_log >= self.every_s:
                self._last_log = now
                self.log(self.line())
            yield frame

    def line(self) -> str:
        pages = f"{self.pages}/{self.total_pages}" if self.total_pages else str(self.pages)
        return (
            f"{self.label}: pages {pages}, rows {self.rows:,}, {self.rate:,.0f} rows/s, "
            f"elapsed {self.elapsed_s:.1f} s"
        )


def time_range(first: datetime | None, last: datetime | None) -> dict[str, object]:
    """Earliest/latest event time landed, as UI timestamps (absent when nothing landed)."""
    if first is None or last is None:
        return {}
    return {
        "first_timestamp": dg.MetadataValue.timestamp(first),
        "last_timestamp": dg.MetadataValue.timestamp(last),
    }
