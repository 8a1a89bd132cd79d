"""Data quality computations for PI tables in plain polars (no Dagster): window profiles, audits, repair diffs.

The Dagster layer (osipi_dagster/defs/pi and defs/quality) turns these results into check results and sensors.
"""

from osipi_dagster.lib.quality.audit import (
    HOUR_STATS_SCHEMA,
    RowDiff,
    checksum_mismatches,
    count_mismatches,
    hour_stats,
    lateness_profile,
    merge_hour_stats,
    row_diff,
    summary_per_hour,
)
from osipi_dagster.lib.quality.config import LateDataSettings, QualityConfigError, QualityThresholds
from osipi_dagster.lib.quality.window import NUMERIC_POINT_TYPES, POINT_COLUMNS, Finding, WindowProfile

__all__ = [
    "HOUR_STATS_SCHEMA",
    "NUMERIC_POINT_TYPES",
    "POINT_COLUMNS",
    "Finding",
    "LateDataSettings",
    "QualityConfigError",
    "QualityThresholds",
    "RowDiff",
    "WindowProfile",
    "checksum_mismatches",
    "count_mismatches",
    "hour_stats",
    "lateness_profile",
    "merge_hour_stats",
    "row_diff",
    "summary_per_hour",
]
