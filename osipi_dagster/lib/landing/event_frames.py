"""Event frames of a UTC-day window and their captured attribute values, read from PI in the landed schemas.

Each frame lives in the day it starts; in-progress frames have end null and in_progress true until a later read.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.catalogue import snapshot
from osipi_dagster.lib.landing.selection import LandingError, af_databases
from osipi_dagster.lib.landing.tables import (
    EF_ATTRIBUTES_LANDED_SCHEMA,
    EVENT_FRAMES_LANDED_SCHEMA,
    EVENT_FRAMES_TABLE,
)
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.schema import EF_ATTRIBUTES_SCHEMA, EVENT_FRAMES_SCHEMA, UTC_US


def read_event_frames(
    client: PIWebAPIClient, databases: list[str], start: datetime, end: datetime, ingested_at: datetime
) -> tuple[pl.DataFrame, int]:
    """Frames of the configured AF databases that start in [start, end), landed; and how many databases."""
    chosen = af_databases(client, databases)
    pages = (page for db in chosen for page in client.iter_event_frames(db, start, end))
    frame = snapshot(pages, EVENT_FRAMES_SCHEMA)
    # The search returns frames overlapping the window; keep those that start in it so each frame lives in one day.
    landed = (
        frame.filter((pl.col("start") >= start) & (pl.col("start") < end))
        .unique("web_id", keep="first", maintain_order=True)
        .with_columns(
            pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"), pl.col("start").dt.date().alias("date")
        )
        .select(list(EVENT_FRAMES_LANDED_SCHEMA))
        .sort("start", "web_id")
    )
    return landed, len(chosen)


def frames_in_lake(lake: Lake, start: datetime, end: datetime) -> pl.DataFrame:
    """The landed frames that start in [start, end): event_frame_web_id, event_frame_start, database."""
    ref = lake.table(EVENT_FRAMES_TABLE)
    if not ref.exists():
        raise LandingError(
            f"Delta table {ref.uri} does not exist yet: materialize pi/{EVENT_FRAMES_TABLE} first."
        )
    return (
        ref.scan()
        .filter((pl.col("start") >= start) & (pl.col("start") < end))
        .select(
            pl.col("web_id").alias("event_frame_web_id"),
            pl.col("start").alias("event_frame_start"),
            "database",
        )
        .collect()
    )


def read_event_frame_attributes(
    client: PIWebAPIClient, frames: pl.DataFrame, ingested_at: datetime
) -> pl.DataFrame:
    """Captured attribute values of `frames` (from `frames_in_lake`), landed."""
    values = snapshot(
        client.iter_event_frame_attributes(frames["event_frame_web_id"].to_list()), EF_ATTRIBUTES_SCHEMA
    )
    return (
        values.join(frames, on="event_frame_web_id", how="inner")
        .with_columns(
            pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
            pl.col("event_frame_start").dt.date().alias("date"),
        )
        .select(list(EF_ATTRIBUTES_LANDED_SCHEMA))
    )
