"""PI Web API channels (WebSocket push of value changes) as iterators of VALUES_SCHEMA frames, sync and async.

A channel opens its socket on the REST client's `Connection` (same TLS context, same auth object and token cache,
same retry policy). It reconnects with backoff when the socket drops or goes silent past the heartbeat deadline;
after a reconnect the gap is back-filled through a `RecordedReader` (the client is one), so no change is lost.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson
import polars as pl
import websockets
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import ClientConnection, connect

from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.connection import Connection
from osipi_dagster.lib.piwebapi.decode import decode_streamset
from osipi_dagster.lib.piwebapi.errors import AuthenticationError, PIWebAPIError, TLSVerificationError
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster.lib.retry import Attempts, certificate_failure, transient_error

log = logging.getLogger(__name__)

CHANNEL_PATH = "/streamsets/channel"
# What a dropped or refused channel raises; `ChannelStream.check` tells the fatal ones apart.
DROPPED = (TimeoutError, OSError, websockets.exceptions.WebSocketException)


class RecordedReader(Protocol):
    """What gap back-fill needs: the server's clock and recorded values (`PIWebAPIClient` has both)."""

    def server_time(self) -> datetime: ...

    def recorded(
        self, web_ids: Sequence[str], start: datetime, end: datetime, *, include_end: bool = ...
    ) -> pl.DataFrame: ...


def channel_url(base_url: str, web_ids: Sequence[str], initial: bool, heartbeat_rate: int | None) -> str:
    """The ws(s):// upgrade URL of a stream-set channel on `web_ids` (the URL whose length servers limit)."""
    base = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    params = [("webId", w) for w in web_ids]
    params.append(("includeInitialValues", "true" if initial else "false"))
    if heartbeat_rate:
        params.append(("heartbeatRate", str(heartbeat_rate)))
    return f"{base}{CHANNEL_PATH}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params)


class ChannelStream:
    """Subscribe to value changes of `web_ids` on `/streamsets/channel` and iterate decoded frames.

    `connection` is the REST client's `Connection` (a bare `ClientConfig` builds one of its own). heartbeat_rate
    asks the server for an empty message after that many empty polls; if nothing (data or heartbeat) arrives within
    `silence_timeout_s` the connection is considered dead and re-opened. At most `max_reconnects` consecutive
    failed connection attempts (the connection's backoff between them) before a PIWebAPIError. Heartbeats yield
    nothing.
    """

    def __init__(
        self,
        connection: Connection | ClientConfig,
        web_ids: Iterable[str],
        *,
        include_initial_values: bool = False,
        heartbeat_rate: int | None = 5,
        silence_timeout_s: float = 60.0,
        max_reconnects: int = 5,
        backfill: RecordedReader | None = None,
    ) -> None:
        if isinstance(connection, ClientConfig):
            connection = Connection.build(connection)
        self.connection = connection
        self.config = connection.config
        self.web_ids = list(dict.fromkeys(web_ids))
        if not self.web_ids:
            raise ValueError("a channel needs at least one web id.")
        self.include_initial_values = include_initial_values
        self.heartbeat_rate = heartbeat_rate
        self.silence_timeout_s = silence_timeout_s
        self.max_reconnects = max_reconnects
        self.backfill = backfill
        self.reconnects = 0
        self.heartbeats = 0
        # Per stream: the latest timestamp delivered and how many values carried it (duplicates share timestamps).
        self._last_ts: dict[str, datetime] = {}
        self._at_last: dict[str, int] = {}
        self._subscribed_at: datetime | None = None  # server time of the first subscription (gap floor)
        self._connected_once = False

    # -- connection details -------------------------------------------------------------------------------------
    def url(self, initial: bool) -> str:
        return channel_url(self.config.base_url, self.web_ids, initial, self.heartbeat_rate)

    def headers(self) -> dict[str, str]:
        """Run the connection's httpx auth flow on a probe request to get the upgrade's Authorization header (an
        OIDC token comes from, and refreshes, the same cache as the REST calls)."""
        probe = httpx.Request("GET", self.config.base_url + CHANNEL_PATH)
        flow = self.connection.auth.sync_auth_flow(probe)
        request = next(flow)
        flow.close()
        return {k: v for k, v in request.headers.items() if k.lower() == "authorization"}

    def ssl_context(self) -> ssl.SSLContext | None:
        """The connection's TLS context for wss:// (the one httpx uses), None for ws://."""
        return self.connection.ssl if self.config.base_url.startswith("https://") else None

    def open(self, initial: bool = False) -> ClientConnection:
        """Open the WebSocket (sync), with the connection's auth and TLS; use it as a context manager."""
        return connect(self.url(initial), **self._options(self.headers()))

    def _options(self, headers: dict[str, str]) -> dict[str, Any]:
        """websockets' connect options, the same for the sync and the async client."""
        return {
            "additional_headers": headers,
            "ssl": self.ssl_context(),
            "open_timeout": self.config.connect_timeout_s,
            "max_size": None,
            "proxy": None,
        }

    def _reconnects(self) -> Attempts:
        """Consecutive failed connections: the connection's backoff, at most `max_reconnects` retries, no deadline."""
        return replace(self.connection.retry, max_retries=self.max_reconnects, deadline_s=None).attempts()

    def check(self, exc: BaseException) -> None:
        """Raise the clear error for a failure no reconnect can fix: an untrusted certificate, a 401/403 upgrade."""
        if transient_error(exc):
            return
        untrusted = certificate_failure(exc)
        if untrusted is not None:
            raise TLSVerificationError.of(
                untrusted, method="GET", path=CHANNEL_PATH, url=self.config.base_url
            ) from None
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise AuthenticationError(
                f"PI Web API refused the channel upgrade with {status} for GET {CHANNEL_PATH}",
                method="GET",
                path=CHANNEL_PATH,
                status=status,
            ) from None

    def _decode(self, raw: str | bytes) -> pl.DataFrame | None:
        frame = channel_message_frame(orjson.loads(raw))
        if frame.is_empty():
            self.heartbeats += 1
            return None
        return self._delivered(frame)

    def _delivered(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """Remember what was delivered, so a reconnect re-reads exactly what came after it."""
        if frame.is_empty():
            return None
        latest = frame.group_by("web_id").agg(
            pl.col("timestamp").max().alias("ts"),
            (pl.col("timestamp") == pl.col("timestamp").max()).sum().alias("n"),
        )
        for w, ts, n in latest.iter_rows():
            if w not in self._last_ts or ts > self._last_ts[w]:
                self._last_ts[w], self._at_last[w] = ts, n
            elif ts == self._last_ts[w]:
                self._at_last[w] += n
        return frame

    def _mark_subscribed(self) -> None:
        if self.backfill is not None and self._subscribed_at is None:
            self._subscribed_at = self.backfill.server_time()

    def _gap(self) -> pl.DataFrame | None:
        """After a reconnect: every value recorded after the last one delivered per stream, up to the server's now.

        Streams that delivered nothing yet are read from the first subscription; values sharing the last delivered
        timestamp are skipped only as many times as they were delivered.
        """
        if self.backfill is None or self._subscribed_at is None:
            return None
        floor = self._subscribed_at
        after = {w: self._last_ts.get(w, floor) for w in self.web_ids}
        frame = self.backfill.recorded(
            self.web_ids, min(after.values()), self.backfill.server_time(), include_end=True
        )
        seen = pl.DataFrame(
            {
                "web_id": self.web_ids,
                "_after": [after[w] for w in self.web_ids],
                "_skip": [self._at_last.get(w, 0) for w in self.web_ids],
            },
            schema={"web_id": pl.Utf8, "_after": VALUES_SCHEMA["timestamp"], "_skip": pl.Int64},
        )
        frame = (
            frame.join(seen, on="web_id")
            .with_columns(pl.int_range(pl.len()).over("web_id", "timestamp").alias("_nth"))
            .filter(
                (pl.col("timestamp") > pl.col("_after"))
                | ((pl.col("timestamp") == pl.col("_after")) & (pl.col("_nth") >= pl.col("_skip")))
            )
            .drop("_after", "_skip", "_nth")
        )
        return self._delivered(frame)

    def _fail(self, exc: BaseException, attempts: Attempts) -> float:
        """The wait before reconnecting after `exc`; raises when it is fatal or the reconnects are spent."""
        self.check(exc)
        delay = attempts.next_delay()
        if delay is None:
            raise PIWebAPIError(
                f"PI Web API channel {CHANNEL_PATH} failed {attempts.made} times in a row "
                f"({type(exc).__name__}: {exc})",
                method="GET",
                path=CHANNEL_PATH,
                status=getattr(getattr(exc, "response", None), "status_code", None),
                advice="check that PI Web API is up and channels are enabled (EnableChannels)",
            ) from None
        self.reconnects += 1
        return delay

    # -- sync ---------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[pl.DataFrame]:
        attempts = self._reconnects()
        while True:
            initial = self.include_initial_values and not self._connected_once
            try:
                self._mark_subscribed()
                with self.open(initial) as ws:
                    if self._connected_once:
                        gap = self._gap()
                        if gap is not None:
                            yield gap
                    self._connected_once = True
                    attempts = self._reconnects()
                    while True:
                        raw = ws.recv(timeout=self.silence_timeout_s)
                        frame = self._decode(raw)
                        if frame is not None:
                            yield frame
            except DROPPED as exc:
                delay = self._fail(exc, attempts)
                log.info("channel dropped (%s); reconnecting in %.2fs", type(exc).__name__, delay)
                attempts.wait(delay)

    # -- async --------------------------------------------------------------------------------------------------
    async def __aiter__(self) -> AsyncIterator[pl.DataFrame]:
        attempts = self._reconnects()
        while True:
            initial = self.include_initial_values and not self._connected_once
            try:
                await asyncio.to_thread(self._mark_subscribed)
                headers = await asyncio.to_thread(self.headers)
                async with aconnect(self.url(initial), **self._options(headers)) as ws:
                    if self._connected_once:
                        gap = await asyncio.to_thread(self._gap)
                        if gap is not None:
                            yield gap
                    self._connected_once = True
                    attempts = self._reconnects()
                    while True:
                        raw = await asyncio.wait_for(ws.recv(), timeout=self.silence_timeout_s)
                        frame = self._decode(raw)
                        if frame is not None:
                            yield frame
            except DROPPED as exc:
                delay = self._fail(exc, attempts)
                # The policy chose the wait; the event loop waits it without blocking (policy.sleep is sync).
                await asyncio.sleep(delay)


def channel_message_frame(body: dict[str, Any]) -> pl.DataFrame:
    """Decode one channel message body (already parsed) into VALUES_SCHEMA, in time order per stream.

    PI does not promise chronological order within a message (streams and values may come in any order), while
    the decoder numbers values sharing a timestamp by adjacency. So sort each stream's values by time, keeping the
    message's order among equal timestamps (PI's order of arrival, which is archive order), and number them again.
    """
    frame = decode_streamset(body, "channel values")
    if frame.height < 2:
        return frame
    return frame.sort("web_id", "timestamp", maintain_order=True).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int32).over("web_id", "timestamp").alias("ordinal")
    )
