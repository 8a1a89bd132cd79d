"""Streaming PI values into the lake (no Dagster): channel listener, durable spool, micro-batch landing.

Public API: `Spool`/`SpoolReader` (spool.py), `ChannelListener`/`tags_matching` (listener.py), `land_segments`
(landing.py), `Lander` (lander.py), `StreamHealth`/`HealthServer` (health.py), `landing_commits` (reports.py); the
CLI is `python -m osipi_dagster.lib.streaming listen|land --help`.
"""

from osipi_dagster.lib.streaming.health import HealthServer, StreamHealth
from osipi_dagster.lib.streaming.lander import Lander, LanderStats
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
from osipi_dagster.lib.streaming.reports import LandingCommit, landing_commits
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Segment, Spool, SpoolError, SpoolReader

__all__ = [
    "SPOOL_SCHEMA",
    "STREAMED_SCHEMA",
    "STREAM_SOURCE",
    "ChannelListener",
    "HealthServer",
    "Lander",
    "LanderStats",
    "LandingCommit",
    "LandingReport",
    "ListenerStats",
    "MergeOutcome",
    "Segment",
    "Spool",
    "SpoolError",
    "SpoolReader",
    "StreamHealth",
    "archive_owned",
    "channel_groups",
    "insert_absent",
    "land_segments",
    "landing_commits",
    "listen",
    "tags_matching",
]
