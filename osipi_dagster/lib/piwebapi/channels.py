"""PI Web API channels (WebSocket push of value changes) as iterators of VALUES_SCHEMA frames, sync and async.

Reconnects with backoff when the socket drops or goes silent past the heartbeat deadline; after a reconnect the
gap is back-filled from recorded values when a `PIWebAPIClient` is given, so no change is lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson
import polars as pl
import websockets
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import connect

from osipi_dagster.lib.piwebapi.auth import build_auth
from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.decode import decode_streamset
from osipi_dagster.lib.piwebapi.errors import (
    AuthenticationError,
    PIWebAPIError,
    TLSVerificationError,
    tls_verification_failure,
)
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA

if TYPE_CHECKING:
    from osipi_dagster.lib.piwebapi.client import PIWebAPIClient

log = logging.getLogger(__name__)


class ChannelStream:
    """Subscribe to value changes of `web_ids` on `/streamsets/channel` and iterate decoded frames.

    heartbeat_rate asks the server for an empty message after that many empty polls; if nothing (data or
    heartbeat) arrives within `silence_timeout_s` the connection is considered dead and re-opened. At most
    `max_reconnects` consecutive failed connection attempts before a PIWebAPIError. Heartbeats yield nothing.
    """

    def __init__(
        self,
        config: ClientConfig,
        web_ids: Iterable[str],
        *,
        include_initial_values: bool = False,
        heartbeat_rate: int | None = 5,
        silence_timeout_s: float = 60.0,
        max_reconnects: int = 5,
        backfill: PIWebAPIClient | None = None,
    ) -> None:
        self.config = config
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
        self._auth = build_auth(config.auth)
        # Per stream: the latest timestamp delivered and how many values carried it (duplicates share timestamps).
        self._last_ts: dict[str, datetime] = {}
        self._at_last: dict[str, int] = {}
        self._subscribed_at: datetime | None = None  # server time of the first subscription (gap floor)
        self._connected_once = False

    # -- connection details -------------------------------------------------------------------------------------
    def url(self, initial: bool) -> str:
        base = self.config.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        params = [("webId", w) for w in self.web_ids]
        params.append(("includeInitialValues", "true" if initial else "false"))
        if self.heartbeat_rate:
            params.append(("heartbeatRate", str(self.heartbeat_rate)))
        return f"{base}/streamsets/channel?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params)

    def headers(self) -> dict[str, str]:
        """Run the same httpx auth flow on a probe request to get the upgrade request's Authorization header."""
        probe = httpx.Request("GET", self.config.base_url + "/streamsets/channel")
        flow = self._auth.sync_auth_flow(probe)
        request = next(flow)
        flow.close()
        return {k: v for k, v in request.headers.items() if k.lower() == "authorization"}

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.base_url.startswith("https://"):
            return None
        if not self.config.verify_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=self.config.ca_bundle)

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

    def _fail(self, exc: BaseException, attempts: int) -> float:
        untrusted = tls_verification_failure(exc)
        if untrusted is not None:
            raise TLSVerificationError.of(
                untrusted, method="GET", path="/streamsets/channel", url=self.config.base_url
            ) from None
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise AuthenticationError(
                f"PI Web API refused the channel upgrade with {status} for GET /streamsets/channel",
                method="GET",
                path="/streamsets/channel",
                status=status,
            ) from None
        if attempts > self.max_reconnects:
            raise PIWebAPIError(
                f"PI Web API channel /streamsets/channel failed {attempts} times in a row "
                f"({type(exc).__name__}: {exc})",
                method="GET",
                path="/streamsets/channel",
                status=status,
                advice="check that PI Web API is up and channels are enabled (EnableChannels)",
            ) from None
        self.reconnects += 1
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * 2**attempts)
        return random.uniform(0.0, cap)

    # -- sync ---------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[pl.DataFrame]:
        failures = 0
        while True:
            initial = self.include_initial_values and not self._connected_once
            try:
                self._mark_subscribed()
                with connect(
                    self.url(initial),
                    additional_headers=self.headers(),
                    ssl=self.ssl_context(),
                    open_timeout=self.config.connect_timeout_s,
                    max_size=None,
                    proxy=None,
                ) as ws:
                    if self._connected_once:
                        gap = self._gap()
                        if gap is not None:
                            yield gap
                    self._connected_once = True
                    failures = 0
                    while True:
                        raw = ws.recv(timeout=self.silence_timeout_s)
                        frame = self._decode(raw)
                        if frame is not None:
                            yield frame
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                failures += 1
                delay = self._fail(exc, failures)
                log.info("channel dropped (%s); reconnecting in %.2fs", type(exc).__name__, delay)
                time.sleep(delay)

    # -- async --------------------------------------------------------------------------------------------------
    async def __aiter__(self) -> AsyncIterator[pl.DataFrame]:
        failures = 0
        while True:
            initial = self.include_initial_values and not self._connected_once
            try:
                await asyncio.to_thread(self._mark_subscribed)
                headers = await asyncio.to_thread(self.headers)
                async with aconnect(
                    self.url(initial),
                    additional_headers=headers,
                    ssl=self.ssl_context(),
                    open_timeout=self.config.connect_timeout_s,
                    max_size=None,
                    proxy=None,
                ) as ws:
                    if self._connected_once:
                        gap = await asyncio.to_thread(self._gap)
                        if gap is not None:
                            yield gap
                    self._connected_once = True
                    failures = 0
                    while True:
                        raw = await asyncio.wait_for(ws.recv(), timeout=self.silence_timeout_s)
                        frame = self._decode(raw)
                        if frame is not None:
                            yield frame
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                failures += 1
                delay = self._fail(exc, failures)
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
