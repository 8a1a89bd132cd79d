"""`spark.readStream.format("osipi")`: recorded values as a micro-batch stream with per-tag offsets (offsets.py).

Exactly-once comes from Spark's contract: offsets are journaled in the checkpoint before a batch runs, a batch reads
exactly (start, end] per tag whatever attempt runs it, and the Delta sink commits each batch id once. Polling
recorded values rather than channels on executors: a micro-batch must be re-readable from its offsets after a
failure, which PI's archive is and a channel's message flow is not.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow
from pyspark.sql.types import StructType

from osipi_dagster.lib.piwebapi import CircuitOpenError, PIWebAPIClient, PIWebAPIError
from osipi_dagster.spark.offsets import (
    StreamWork,
    advance,
    candidates,
    frontiers,
    offset,
    stream_groups,
    to_us,
)
from osipi_dagster.spark.options import SourceOptions
from osipi_dagster.spark.planning import balance
from osipi_dagster.spark.source import OSIPIPartition, read_work
from osipi_dagster.spark.work import discover_tags, resolve_times

log = logging.getLogger(__name__)
TRANSIENT_STATUS = (None, 408, 429, 500, 502, 503, 504)


def unavailable(err: PIWebAPIError) -> bool:
    """PI down or overloaded (connection refused, 5xx after retries, breaker open), not misconfigured."""
    return isinstance(err, CircuitOpenError) or (
        type(err) is PIWebAPIError and err.status in TRANSIENT_STATUS
    )


class OSIPIStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Driver side of the stream (offsets, planning) and, on executors, the reads of its partitions."""

    def __init__(self, opts: SourceOptions, schema: StructType) -> None:
        self.opts = opts
        self.schema = schema
        self._tags: dict[str, str] | None = None
        self._target: dict[str, int] | None = None
        self._last: dict[str, int] | None = None
        self._down_since: float | None = None
        self._probed_at = 0.0

    def _client(self) -> PIWebAPIClient:
        return PIWebAPIClient(self.opts.client_config())

    def _selected(self, client: PIWebAPIClient) -> dict[str, str]:
        """web_id → tag of the selected points, discovered once per run of the query (a restart re-discovers)."""
        if self._tags is None:
            self._tags = dict(discover_tags(client, self.opts).iter_rows())
            log.info("osipi stream: %d tags selected", len(self._tags))
        return self._tags

    def initialOffset(self) -> dict[str, Any]:
        with self._client() as client:
            tags = self._selected(client)
            (start,) = resolve_times(client, self.opts.start or "*")
        first = to_us(start) - 1  # frontiers are inclusive of what was emitted: start itself is still to come
        return offset(dict.fromkeys(tags, first))

    def prepareForTriggerAvailableNow(self) -> None:
        with self._client() as client:
            tags = list(self._selected(client))
            found, now_us = candidates(client, tags)
        self._target = {w: found.get(w, now_us) for w in tags}

    def latestOffset(self, start: dict[str, Any] | None = None, limit: Any = None) -> dict[str, Any]:
        # Spark < 4.2 calls latestOffset() without the start: the last offset this reader returned stands in.
        begin = frontiers(start) if start is not None else dict(self._last or {})
        # Spark's default trigger polls an idle source every few milliseconds: each probe costs PI one call per
        # ~85 tags, so probes are spaced by min_poll_interval_s (waiting, never answering from a stale probe).
        wait = self._probed_at + self.opts.min_poll_interval_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._probed_at = time.monotonic()
        try:
            with self._client() as client:
                tags = list(self._selected(client))
                found, now_us = candidates(client, tags)
        except PIWebAPIError as err:
            if not unavailable(err):
                raise
            self._down_since = self._down_since or time.monotonic()
            down = time.monotonic() - self._down_since
            if down > self.opts.outage_timeout_s:
                raise
            log.warning(
                "osipi stream: PI Web API unavailable for %.0f s, no new offset this trigger: %s", down, err
            )
            return offset(begin)
        self._down_since = None
        self._last = advance(begin, found, now_us, tags, self._target)
        return offset(self._last)

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> list[InputPartition]:
        groups = stream_groups(frontiers(start), frontiers(end))
        if not groups:
            return []
        if self._tags is None:  # a restarted query re-runs its journaled last batch before any latestOffset
            with self._client() as client:
                self._selected(client)
        tags = self._tags or {}
        ingested_at = datetime.now(UTC)
        out: list[InputPartition] = []
        # Balanced on the groups' spans: their values are unknown without a Count call per batch.
        for i, part in enumerate(balance(groups, self.opts.max_partitions)):
            names = {w: tags[w] for g in part for w, _, _ in g.bounds if w in tags}
            out.append(OSIPIPartition(i, StreamWork(tuple(part), names, ingested_at)))
        return out

    def read(self, partition: InputPartition) -> Any:
        assert isinstance(partition, OSIPIPartition)
        return read_work(self.opts, self.schema, partition)

    def commit(self, end: dict[str, Any]) -> None:
        log.debug("osipi stream: committed %s tags up to %s", end.get("tags"), end.get("until"))
