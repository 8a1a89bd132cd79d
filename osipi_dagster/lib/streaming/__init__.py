"""Streaming PI values into the lake (no Dagster): channel listener, durable spool, micro-batch landing.

Public API: `Spool`/`SpoolReader` (spool.py), `ChannelListener`/`tags_matching` (listener.py), `land_segments`
(landing.py); the listener CLI is `python -m osipi_dagster.lib.streaming listen --help`.
"""

from osipi_dagster.lib.streaming.landing import (
    STREAM_SOURCE,
    STREAMED_SCHEMA,
    LandingReport,
    insert_absent,
    land_segments,
    reconciled_hours,
)
from osipi_dagster.lib.streaming.listener import ChannelListener, ListenerStats, listen, tags_matching
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Segment, Spool, SpoolError, SpoolReader

__all__ = [
    "SPOOL_SCHEMA",
    "STREAMED_SCHEMA",
    "STREAM_SOURCE",
    "ChannelListener",
    "LandingReport",
    "ListenerStats",
    "Segment",
    "Spool",
    "SpoolError",
    "SpoolReader",
    "insert_absent",
    "land_segments",
    "listen",
    "reconciled_hours",
    "tags_matching",
]
