"""Asset checks for PI dimension tables, evaluated inside the materialization on the snapshot already in memory.

Specs are constants so assets declare them (`check_specs=`) and tests name them; no check re-reads a table.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

POINTS_UNIQUE_WEB_ID = dg.AssetCheckSpec(
    "unique_web_id",
    asset=dg.AssetKey(["pi", "pi_points"]),
    description="Every PI point appears once in the catalogue snapshot (WebIDs are unique across data servers).",
)
ELEMENTS_TREE_COMPLETE = dg.AssetCheckSpec(
    "tree_complete",
    asset=dg.AssetKey(["pi", "af_elements"]),
    description="Every element's parent is in the snapshot, so the hierarchy can be walked from the roots.",
)
ATTRIBUTES_POINTS_RESOLVED = dg.AssetCheckSpec(
    "pi_points_resolved",
    asset=dg.AssetKey(["pi", "af_attributes"]),
    description="Every attribute with a PI Point data reference resolved to a PI point WebID.",
)


def unique_web_id(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    duplicated = frame.filter(pl.col("web_id").is_duplicated())["web_id"].unique().sort()
    return dg.AssetCheckResult(
        check_name=spec.name,
        asset_key=spec.asset_key,
        passed=duplicated.len() == 0,
        metadata={"duplicated_web_ids": duplicated.len(), "sample": duplicated.head(5).to_list()},
    )


def tree_complete(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    orphans = frame.filter(
        pl.col("parent_web_id").is_not_null() & ~pl.col("parent_web_id").is_in(frame["web_id"].implode())
    )
    return dg.AssetCheckResult(
        check_name=spec.name,
        asset_key=spec.asset_key,
        passed=orphans.height == 0,
        metadata={"orphans": orphans.height, "sample": orphans["path"].head(5).to_list()},
    )


def points_resolved(spec: dg.AssetCheckSpec, frame: pl.DataFrame) -> dg.AssetCheckResult:
    pi_refs = frame.filter(pl.col("data_reference").str.to_lowercase() == "pi point")
    unresolved = pi_refs.filter(pl.col("point_web_id").is_null())
    return dg.AssetCheckResult(
        check_name=spec.name,
        asset_key=spec.asset_key,
        # A reference to a deleted or renamed tag is a configuration problem in AF, not an ingestion failure.
        severity=dg.AssetCheckSeverity.WARN,
        passed=unresolved.height == 0,
        metadata={
            "pi_point_attributes": pi_refs.height,
            "unresolved": unresolved.height,
            "sample": unresolved["path"].head(5).to_list(),
        },
    )
