"""What a repair run changed in a pi_timeseries window: per (tag, hour) checksums find the changed cells, and only
those are read back from both table versions (Delta time travel) and diffed row by row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.landing.recorded import recorded_scan
from osipi_dagster.lib.landing.tables import TIMESERIES_SCHEMA
from osipi_dagster.lib.quality import DiffTally, RowDiff, cell_batches, changed_cells
from osipi_dagster.lib.quality.audit import CONTENT, KEY

# Rows (before + after) of changed (tag, hour) cells a repair diffs at once: bounds a repair's extra memory.
REPAIR_DIFF_BATCH_ROWS = 500_000


def repair_diff(
    ref: DeltaTableRef,
    *,
    start: datetime,
    end: datetime,
    before_version: int | None,
    before: pl.DataFrame,
    after_version: int,
    after: pl.DataFrame,
    ingested_at: datetime,
) -> RowDiff:
    """What a repair changed. Per (tag, hour) checksums (`before` from the previous table version, `after` from the
    landing stream) find the cells that differ; only those are read back, from both table versions (Delta time
    travel), in batches of at most REPAIR_DIFF_BATCH_ROWS rows, and diffed row by row."""
    cells, unchanged_rows = changed_cells(before, after)
    tally = DiffTally(ingested_at, unchanged=unchanged_rows)
    columns = [*KEY, *CONTENT[2:]]

    def rows(version: int | None, batch: pl.DataFrame) -> pl.DataFrame:
        if version is None:
            return pl.DataFrame(schema={c: TIMESERIES_SCHEMA[c] for c in columns})
        lo = batch["hour"].min()
        hi = batch["hour"].max() + timedelta(hours=1)  # type: ignore[operator]
        ids = batch["web_id"].unique().implode()
        return (
            recorded_scan(ref, max(start, lo), min(end, hi), version)  # type: ignore[type-var]
            .filter(pl.col("web_id").is_in(ids))
            .with_columns(pl.col("timestamp").dt.truncate("1h").alias("hour"))
            .join(batch.lazy().select("web_id", "hour"), on=["web_id", "hour"], how="semi")
            .select(columns)
            .collect()
        )

    for batch in cell_batches(cells, REPAIR_DIFF_BATCH_ROWS):
        tally.add(rows(before_version, batch), rows(after_version, batch))
    return tally.result()
