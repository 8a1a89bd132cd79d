"""Asset checks for PI tables, evaluated inside the materialization on what is already in memory (the snapshot, or
the time-series window's quality profile); specs are constants so assets declare them and tests name them.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from osipi_dagster.defs.pi.names import ATTRIBUTES_KEY, ELEMENTS_KEY, POINTS_KEY, TIMESERIES_KEY
from osipi_dagster.lib.quality import DuplicateKeyError, WindowProfile

POINTS_UNIQUE_WEB_ID = dg.AssetCheckSpec(
    "unique_web_id",
    asset=POINTS_KEY,
    description="Every PI point appears once in the catalogue snapshot (WebIDs are unique across data servers).",
)
ELEMENTS_TREE_COMPLETE = dg.AssetCheckSpec(
    "tree_complete",
    asset=ELEMENTS_KEY,
    description="Every element's parent is in the snapshot, so the hierarchy can be walked from the roots.",
)
ATTRIBUTES_POINTS_RESOLVED = dg.AssetCheckSpec(
    "pi_points_resolved",
    asset=ATTRIBUTES_KEY,
    description="Every attribute with a PI Point data reference resolved to a PI point WebID.",
)


def unique_web_id(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    duplicated = frame.filter(pl.col("web_id").is_duplicated())["web_id"].unique().sort()
    return dg.AssetCheckResult(
        check_name=spec.name,
        passed=duplicated.len() == 0,
        metadata={"duplicated_web_ids": duplicated.len(), "sample": duplicated.head(5).to_list()},
    )


def tree_complete(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    orphans = frame.filter(
        pl.col("parent_web_id").is_not_null() & ~pl.col("parent_web_id").is_in(frame["web_id"].implode())
    )
    return dg.AssetCheckResult(
        check_name=spec.name,
        passed=orphans.height == 0,
        metadata={"orphans": orphans.height, "sample": orphans["path"].head(5).to_list()},
    )


def points_resolved(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    pi_refs = frame.filter(pl.col("data_reference").str.to_lowercase() == "pi point")
    unresolved = pi_refs.filter(pl.col("point_web_id").is_null())
    return dg.AssetCheckResult(
        check_name=spec.name,
        # A reference to a deleted or renamed tag is a configuration problem in AF, not an ingestion failure.
        severity=dg.AssetCheckSeverity.WARN,
        passed=unresolved.height == 0,
        metadata={
            "pi_point_attributes": pi_refs.height,
            "unresolved": unresolved.height,
            "sample": unresolved["path"].head(5).to_list(),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# pi_timeseries: one window's quality, computed while it streams in (thresholds: the pi resource's `quality`,
# OSIPI_QUALITY_*; docs/quality.md)

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR


def _ts_spec(name: str, description: str, *, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=TIMESERIES_KEY, description=description, blocking=blocking)


TS_UNIQUE_KEYS = _ts_spec(
    "unique_keys",
    "No (web_id, timestamp, ordinal) appears twice in the window: checked per tag on every page before it is "
    "written, and a repeated key stops the run before its Delta commit (nothing lands). ERROR and blocking: "
    "duplicates double-count every aggregate downstream.",
    blocking=True,
)
TS_COMPLETE = _ts_spec(
    "complete_vs_pi",
    "Per tag, the good values landed equal PI's summary Count for the window. ERROR, not blocking: data arriving "
    "after the read is normal for buffered interfaces, and the late-data sensor repairs the window.",
)
TS_GOOD_SHARE = _ts_spec("good_share", "Every tag's share of Good values is at least the threshold (WARN).")
TS_SYSTEM_STATES = _ts_spec(
    "system_states", "System-state counts by state name; WARN when a tag's share of system states is high."
)
TS_SUBSTITUTED = _ts_spec(
    "substituted_questionable",
    "Shares of substituted and questionable values per tag below the thresholds (WARN).",
)
TS_SPAN = _ts_spec("values_within_span", "Numeric values lie within the point's [zero, zero + span] (WARN).")
TS_FLATLINE = _ts_spec("flat_lined_tags", "No tag repeats one identical value over the whole window (WARN).")
TS_WITH_DATA = _ts_spec(
    "tags_with_data", "Requested tags without any value in the window stay below the threshold share (WARN)."
)
TIMESERIES_CHECKS = [
    TS_UNIQUE_KEYS,
    TS_COMPLETE,
    TS_GOOD_SHARE,
    TS_SYSTEM_STATES,
    TS_SUBSTITUTED,
    TS_SPAN,
    TS_FLATLINE,
    TS_WITH_DATA,
]


def duplicate_keys_result(err: DuplicateKeyError) -> dg.AssetCheckResult:
    """The failed unique_keys result of a run stopped by a repeated key: nothing was written, no materialization."""
    return dg.AssetCheckResult(
        check_name=TS_UNIQUE_KEYS.name,
        passed=False,
        severity=ERROR,
        description="Duplicate keys detected in the landing stream; the window was not written.",
        metadata={
            "offending": err.offending,
            "sample": dg.MetadataValue.json(err.web_ids[:20]),
            "example": dg.MetadataValue.json({k: str(v) for k, v in err.example.items()}),
            "written": False,
        },
    )


def completeness(
    spec: dg.AssetCheckSpec, lake_counts: pl.DataFrame, pi_counts: pl.DataFrame | None, sample_size: int
) -> dg.AssetCheckResult:
    """Lake good counts (web_id, lake_count) against PI's Count (web_id, count); lists the mismatching tags."""
    if pi_counts is None:
        return dg.AssetCheckResult(check_name=spec.name, passed=True, metadata={"tags_compared": 0})
    joined = pi_counts.join(lake_counts, on="web_id", how="full", coalesce=True).with_columns(
        pl.col("count").fill_null(0), pl.col("lake_count").fill_null(0)
    )
    bad = joined.filter(pl.col("count") != pl.col("lake_count")).sort("web_id")
    return dg.AssetCheckResult(
        check_name=spec.name,
        passed=bad.height == 0,
        severity=ERROR,
        metadata={
            "tags_compared": joined.height,
            "mismatching_tags": bad.height,
            "pi_count": int(joined["count"].sum()),
            "lake_count": int(joined["lake_count"].sum()),
            "mismatches": dg.MetadataValue.json(
                [
                    {"web_id": w, "pi_count": int(p), "lake_count": int(lk)}
                    for w, p, lk in bad.head(sample_size).select("web_id", "count", "lake_count").iter_rows()
                ]
            ),
        },
    )


def timeseries_results(profile: WindowProfile, pi_counts: pl.DataFrame | None) -> list[dg.AssetCheckResult]:
    """Every pi_timeseries check result of one window, in TIMESERIES_CHECKS order."""
    findings = profile.findings()
    sample_size = profile.thresholds.sample_size
    results = []
    for spec in TIMESERIES_CHECKS:
        if spec is TS_COMPLETE:
            results.append(completeness(spec, profile.good_counts(), pi_counts, sample_size))
            continue
        finding = findings[spec.name]
        metadata: dict[str, object] = {"offending": finding.offending}
        if finding.sample:
            metadata["sample"] = dg.MetadataValue.json(finding.sample)
        for k, v in finding.figures.items():
            metadata[k] = dg.MetadataValue.json(v) if isinstance(v, dict) else v
        results.append(
            dg.AssetCheckResult(
                check_name=spec.name,
                passed=finding.passed,
                severity=ERROR if spec is TS_UNIQUE_KEYS else WARN,
                metadata={k: v for k, v in metadata.items() if v is not None},
            )
        )
    return results
