"""What a connection's selection picks: data servers and AF databases by name, catalogued tags by the tag filter.

Names PI does not know and upstream tables never written are `LandingError`s whose message says what to fix.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.tables import POINTS_TABLE
from osipi_dagster.lib.piwebapi import AssetDatabase, PIWebAPIClient
from osipi_dagster.lib.quality import POINT_COLUMNS


class LandingError(Exception):
    """A configuration or ordering problem the operator fixes (the message says how); not a transient failure."""


def pi_name_filter_regex(name_filter: str) -> str:
    """PI name filter (`*` any run, `?` one character, case-insensitive) as an anchored regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name_filter)
    return f"(?i)^{body}$"


def select_by_name(available: list[Any], wanted: list[str], attr: str, what: str, variable: str) -> list[Any]:
    """The configured subset (case-insensitive, PI names are), or everything when nothing is configured."""
    if not wanted:
        return available
    by_name = {str(getattr(item, attr)).lower().lstrip("\\"): item for item in available}
    missing = [w for w in wanted if w.lower().lstrip("\\") not in by_name]
    if missing:
        known = ", ".join(sorted(str(getattr(item, attr)) for item in available)) or "none"
        raise LandingError(
            f"{variable} names {what} that PI Web API does not know: {', '.join(missing)}. Known: {known}. "
            f"Fix {variable} or leave it empty for all."
        )
    return [by_name[w.lower().lstrip("\\")] for w in wanted]


def af_databases(client: PIWebAPIClient, wanted: list[str]) -> list[AssetDatabase]:
    databases = [db for server in client.asset_servers() for db in client.asset_databases(server)]
    return select_by_name(databases, wanted, "path", "AF databases", "PI_AF_DATABASES")


def read_current(lake: Lake, table: str, columns: list[str], upstream: str) -> pl.DataFrame:
    """Current rows (is_current) of an SCD2 dimension table; a clear error if it was never materialized."""
    ref = lake.table(table)
    if not ref.exists():
        raise LandingError(
            f"Delta table {ref.uri} does not exist yet: materialize {upstream} first "
            f"(e.g. with pi_catalogue_job), then re-run this partition."
        )
    return ref.scan().filter(pl.col("is_current")).select(columns).collect()


def tags_to_extract(lake: Lake, tag_filter: str) -> pl.DataFrame:
    """Current catalogue rows whose name matches PI_TAG_FILTER: new tags join on the next catalogue refresh.

    Columns POINT_COLUMNS (web_id, tag, point_type, span, zero): the quality profile checks values against them.
    """
    points = read_current(
        lake, POINTS_TABLE, ["web_id", "name", "point_type", "span", "zero"], f"pi/{POINTS_TABLE}"
    )
    return (
        points.filter(pl.col("name").str.contains(pi_name_filter_regex(tag_filter)))
        .rename({"name": "tag"})
        .unique("web_id")
        .select(POINT_COLUMNS)
        .sort("tag", "web_id")
    )
