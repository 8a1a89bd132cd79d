"""`PIWebAPIClient`: discovery (points, AF hierarchy, event frames) and complete time-series reads as polars frames.

All HTTP goes through `HTTPSession` (retries, breaker, stats); bulk reads use stream sets chunked by URL length and
POST /batch for per-stream continuations, in parallel on a bounded thread pool. The client is assembled from parts
that each own one concern: `base.py` (shared state and request plumbing), `discovery.py` (servers, points, AF,
event frames), `reads.py` (recorded, interpolated, plot, end and current values) and `summaries.py` (summaries
and recorded counts); this module owns the lifecycle and channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osipi_dagster.lib.piwebapi.base import PAGE_SIZE
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.piwebapi.discovery import DiscoveryMixin
from osipi_dagster.lib.piwebapi.reads import SET_FIELDS, STREAM_FIELDS, ReadsMixin
from osipi_dagster.lib.piwebapi.summaries import HALF_OPEN_BASIS, SummariesMixin

__all__ = ["HALF_OPEN_BASIS", "PAGE_SIZE", "SET_FIELDS", "STREAM_FIELDS", "PIWebAPIClient"]


class PIWebAPIClient(DiscoveryMixin, ReadsMixin, SummariesMixin):
    """One client per PI Web API: a pooled HTTP session, caches (web ids, densities) and the read strategies."""

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def __enter__(self) -> PIWebAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"PIWebAPIClient(base_url={self.config.base_url!r}, auth={self.session.auth!r})"

    def channel(self, web_ids: Iterable[str], **options: Any) -> ChannelStream:
        """A WebSocket channel on `web_ids` (iterate it, sync or async) on this client's connection (TLS, auth and its
        token cache, retry policy); gaps after reconnects are back-filled from this client's recorded reads."""
        return ChannelStream(self.session.connection, web_ids, backfill=self, **options)
