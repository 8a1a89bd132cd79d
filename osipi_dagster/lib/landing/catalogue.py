"""Snapshots of the PI catalogue and the AF hierarchy, read from PI in the landed schemas, with their figures.

Each returns a `Snapshot`: the frame the Dagster layer SCD2-merges, and what it reports about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.selection import af_databases, read_current, select_by_name
from osipi_dagster.lib.landing.tables import AF_ATTRIBUTES_SCHEMA, ELEMENTS_TABLE
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import ATTRIBUTES_SCHEMA, ELEMENTS_SCHEMA, POINTS_SCHEMA


@dataclass(frozen=True)
class Snapshot:
    """One dimension snapshot and its figures (name → number, or a dict shown as JSON)."""

    frame: pl.DataFrame
    figures: dict[str, object] = field(default_factory=dict)


def snapshot(frames: Iterable[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """Concatenate client pages into one frame of exactly `schema` (also when there are none)."""
    parts = [frame.select(list(schema)).cast(dict(schema)) for frame in frames]
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=schema)


def counts_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    return dict(frame.group_by(column).len().sort(column).iter_rows())


def points_snapshot(client: PIWebAPIClient, data_servers: list[str]) -> Snapshot:
    """Every point of the configured data servers (all when none is configured)."""
    servers = select_by_name(client.data_servers(), data_servers, "name", "data servers", "PI_DATA_SERVERS")
    frame = snapshot((page for s in servers for page in client.iter_points(s, "*")), POINTS_SCHEMA)
    return Snapshot(frame, {"data_servers": counts_by(frame, "server"), "tag_count": frame.height})


def elements_snapshot(client: PIWebAPIClient, databases: list[str]) -> Snapshot:
    """The element hierarchy of the configured AF databases (all when none is configured)."""
    chosen = af_databases(client, databases)
    frame = snapshot((page for db in chosen for page in client.iter_elements(db)), ELEMENTS_SCHEMA)
    max_depth = int(frame["depth"].max() or 0) if frame.height else 0  # type: ignore[arg-type]
    return Snapshot(frame, {"databases": counts_by(frame, "database"), "max_depth": max_depth})


def attributes_snapshot(client: PIWebAPIClient, lake: Lake) -> Snapshot:
    """Attributes of the current elements in the lake (af_elements), PI point references resolved."""
    elements = read_current(lake, ELEMENTS_TABLE, ["web_id", "database"], f"pi/{ELEMENTS_TABLE}")
    frame = snapshot(client.iter_attributes(elements["web_id"].to_list()), ATTRIBUTES_SCHEMA)
    frame = frame.join(elements.rename({"web_id": "element_web_id"}), on="element_web_id", how="left").select(
        list(AF_ATTRIBUTES_SCHEMA)
    )
    figures = {
        "elements": elements.height,
        "pi_point_attributes": int(frame["point_web_id"].is_not_null().sum()),
    }
    return Snapshot(frame, figures)
