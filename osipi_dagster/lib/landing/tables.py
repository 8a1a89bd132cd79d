"""The PI tables in the lake: their names (equal to the asset names) and the landed schemas.

Every module that reads or writes a PI table names it from here. Landed schemas are the client's schemas plus what
the landing adds; documented in docs/tables.md.
"""

from __future__ import annotations

import polars as pl

from osipi_dagster.lib.piwebapi.schema import (
    ATTRIBUTES_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    UTC_US,
    VALUES_SCHEMA,
)

POINTS_TABLE = "pi_points"
ELEMENTS_TABLE = "af_elements"
ATTRIBUTES_TABLE = "af_attributes"
EVENT_FRAMES_TABLE = "event_frames"
EF_ATTRIBUTES_TABLE = "event_frame_attributes"
TIMESERIES_TABLE = "pi_timeseries"
TABLES = (
    POINTS_TABLE,
    ELEMENTS_TABLE,
    ATTRIBUTES_TABLE,
    EVENT_FRAMES_TABLE,
    EF_ATTRIBUTES_TABLE,
    TIMESERIES_TABLE,
)

# `source` of archive reads. Streamed rows (lib/streaming) land as "stream"; a recorded hour's replace_window makes
# the archive the truth for that window again.
SOURCE_RECORDED = "recorded"

TIMESERIES_SCHEMA = pl.Schema(
    {**VALUES_SCHEMA, "tag": pl.Utf8, "ingested_at": UTC_US, "source": pl.Utf8, "date": pl.Date}
)
# A sharded connection's pi_timeseries (tag_shards > 1, lib/landing/shards.py) adds the tag's shard, "0".."N-1".
SHARDED_TIMESERIES_SCHEMA = pl.Schema({**TIMESERIES_SCHEMA, "shard": pl.Utf8})
AF_ATTRIBUTES_SCHEMA = pl.Schema({**ATTRIBUTES_SCHEMA, "database": pl.Utf8})
EVENT_FRAMES_LANDED_SCHEMA = pl.Schema({**EVENT_FRAMES_SCHEMA, "ingested_at": UTC_US, "date": pl.Date})
EF_ATTRIBUTES_LANDED_SCHEMA = pl.Schema(
    {
        **EF_ATTRIBUTES_SCHEMA,
        "event_frame_start": UTC_US,
        "database": pl.Utf8,
        "ingested_at": UTC_US,
        "date": pl.Date,
    }
)
