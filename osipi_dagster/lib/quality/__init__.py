"""Data quality computations for PI tables in plain polars (no Dagster): window profiles, audits, repair diffs.

The Dagster layer (osipi_dagster/defs/pi and defs/quality) turns these results into check results and sensors.
"""

from osipi_dagster.lib.quality.audit import (
    HOUR_STATS_SCHEMA,
    DiffTally,
    HourStatsAccumulator,
    RowDiff,
    cell_batches,
    changed_cells,
    checksum_mismatches,
    count_mismatches,
    hour_stats,
    merge_hour_stats,
    row_diff,
    summary_per_hour,
)
from osipi_dagster.lib.quality.histogram import LogHistogram
from osipi_dagster.lib.quality.window import (
    NUMERIC_POINT_TYPES,
    POINT_COLUMNS,
    DuplicateKeyError,
    Finding,
    KeyOrder,
    WindowProfile,
)
from osipi_dagster.lib.settings.quality import LateDataSettings, QualityConfigError, QualityThresholds

__all__ = [
    "HOUR_STATS_SCHEMA",
    "NUMERIC_POINT_TYPES",
    "POINT_COLUMNS",
    "DiffTally",
    "DuplicateKeyError",
    "Finding",
    "HourStatsAccumulator",
    "KeyOrder",
    "LateDataSettings",
    "LogHistogram",
    "QualityConfigError",
    "QualityThresholds",
    "RowDiff",
    "WindowProfile",
    "cell_batches",
    "changed_cells",
    "checksum_mismatches",
    "count_mismatches",
    "hour_stats",
    "merge_hour_stats",
    "row_diff",
    "summary_per_hour",
]
