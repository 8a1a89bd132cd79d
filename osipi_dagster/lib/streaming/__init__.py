"""Streaming PI values into the lake (no Dagster): channel listener, durable spool, micro-batch landing.

Public API: `Spool`/`SpoolReader` (spool.py), `ChannelListener`/`tags_matching` (listener.py), `land_segments`
(landing.py); the listener CLI is `python -m osipi_dagster.lib.streaming listen --help`.
"""

from osipi_dagster.lib.streaming.landing import (
    STREAM_SOURCE,
    STREAMED_SCHEMA,
    LandingReport,
    MergeOutcome,
    archive_owned,
    insert_absent,
    land_segments,
)
from osipi_dagster.lib.streaming.listener import (
    ChannelListener,
    ListenerStats,
    channel_groups,
    listen,
    tags_matching,
)
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Segment, Spool, SpoolError, SpoolReader

__all__ = [
    "SPOOL_SCHEMA",
    "STREAMED_SCHEMA",
    "STREAM_SOURCE",
    "ChannelListener",
    "LandingReport",
    "ListenerStats",
    "MergeOutcome",
    "Segment",
    "Spool",
    "SpoolError",
    "SpoolReader",
    "archive_owned",
    "channel_groups",
    "insert_absent",
    "land_segments",
    "listen",
    "tags_matching",
]
