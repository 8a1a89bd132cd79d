"""Channel listener: PI Web API stream-set channels → the durable spool, gap-free across drops and restarts.

Owns tag selection for streaming, one WebSocket per channel of `channel_size` streams (reconnect with backoff,
heartbeat/silence detection), and the catch-up read of recorded values for every span not covered by the spool.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import orjson
import polars as pl
import websockets
from websockets.sync.client import connect

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import AuthenticationError, PIWebAPIClient, PIWebAPIError
from osipi_dagster.lib.piwebapi.channels import ChannelStream, channel_message_frame
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Spool, from_us, to_us

log = logging.getLogger(__name__)

TAGS_SCHEMA = pl.Schema({"web_id": pl.Utf8, "tag": pl.Utf8})


def tags_matching(lake: Lake, tag_filter: str, table: str = "pi_points") -> pl.DataFrame:
    """Current catalogue rows (web_id, tag) whose name matches a PI name filter (`*`, `?`, case-insensitive)."""
    ref = lake.table(table)
    if not ref.exists():
        raise FileNotFoundError(
            f"Delta table {ref.uri} does not exist: materialize pi/pi_points first, or pass explicit --web-id values"
        )
    regex = (
        "(?i)^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in tag_filter) + "$"
    )
    return (
        ref.scan()
        .filter(pl.col("is_current") & pl.col("name").str.contains(regex))
        .select("web_id", pl.col("name").alias("tag"))
        .unique("web_id")
        .sort("tag", "web_id")
        .collect()
    )


@dataclass
class ListenerStats:
    """Counters since the listener process started (published next to the spool for the landing run)."""

    started_at: str | None = None  # server time from which the spool is gap-free (first ever start)
    channels: int = 0
    streams: int = 0
    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    heartbeats: int = 0
    values: int = 0
    gap_reads: int = 0
    gap_values: int = 0
    silence_timeouts: int = 0  # connections given up because nothing (not even a heartbeat) arrived in time
    last_error: str | None = None
    process_started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class ChannelListener:
    """Subscribe `tags` (web_id, tag) in channels of `channel_size` streams and spool everything they deliver.

    On every (re)connect the listener first reads recorded values for the span each stream's spool coverage does
    not reach (up to the server time after the connection opened), so drops, crashes and restarts leave no gap;
    overlaps with channel messages are removed on the key when landing.
    """

    def __init__(
        self,
        client: PIWebAPIClient,
        spool: Spool,
        tags: pl.DataFrame,
        *,
        channel_size: int = 1000,
        heartbeat_rate: int = 5,
        silence_timeout_s: float = 30.0,
        backoff_max_s: float = 10.0,
    ) -> None:
        if tags.is_empty():
            raise ValueError("the listener needs at least one tag to subscribe to")
        if channel_size < 1:
            raise ValueError(f"channel_size must be at least 1, got {channel_size}")
        self.client = client
        self.spool = spool
        self.tags = (
            tags.select(list(TAGS_SCHEMA)).cast(dict(TAGS_SCHEMA)).unique("web_id", maintain_order=True)
        )
        self.channel_size = channel_size
        self.heartbeat_rate = heartbeat_rate
        self.silence_timeout_s = silence_timeout_s
        self.backoff_max_s = backoff_max_s
        ids = self.tags["web_id"].to_list()
        self.channels = [ids[i : i + channel_size] for i in range(0, len(ids), channel_size)]
        prior = spool.listener_state()
        self.stats = ListenerStats(
            started_at=prior.get("started_at"), channels=len(self.channels), streams=len(ids)
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        for i, ids in enumerate(self.channels):
            t = threading.Thread(target=self._guard, args=(i, ids), name=f"pi-channel-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        sealer = threading.Thread(target=self._seal_loop, name="spool-sealer", daemon=True)
        sealer.start()
        self._threads.append(sealer)

    def stop(self) -> None:
        """Stop every channel, seal the open segment, publish the final counters."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.silence_timeout_s + 5)
        self._publish()
        self.spool.seal()

    def run(self, stop: threading.Event | None = None) -> None:
        """Block until `stop` is set (or a fatal error, re-raised)."""
        self.start()
        try:
            while not self._stop.is_set() and not (stop is not None and stop.is_set()):
                self._stop.wait(0.2)
        finally:
            self.stop()
        if self._error is not None:
            raise self._error

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _guard(self, index: int, ids: list[str]) -> None:
        try:
            self._run_channel(index, ids)
        except BaseException as exc:  # a fatal error (auth) stops the whole listener, visibly
            log.error("channel %d stopped: %s", index, exc)
            self._error = exc
            self._stop.set()

    def _seal_loop(self) -> None:
        period = max(0.05, min(0.5, self.spool.max_segment_age_s / 4))
        while not self._stop.wait(period):
            self._publish()
            self.spool.seal_if_due()

    def _publish(self) -> None:
        with self._lock:
            self.spool.publish_state(asdict(self.stats))

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, d in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + d)

    # -- one channel ---------------------------------------------------------------------------------------------
    def _server_now(self) -> datetime:
        return self.client.server_time()

    def _run_channel(self, index: int, ids: list[str]) -> None:
        stream = ChannelStream(self.client.config, ids, heartbeat_rate=self.heartbeat_rate or None)
        tags = self.tags.filter(pl.col("web_id").is_in(ids))
        failures = 0
        while not self._stop.is_set():
            try:
                # Streams the spool has never covered start here: nothing before this instant is wanted.
                covered = self.spool.covered()
                fresh = [w for w in ids if w not in covered]
                if fresh:
                    floor = self._server_now()
                    self.spool.append(pl.DataFrame(schema=SPOOL_SCHEMA), covered=(fresh, floor))
                    with self._lock:
                        self.stats.started_at = self.stats.started_at or floor.isoformat()
                # The private helpers of ChannelStream carry the client's auth and TLS settings to the upgrade.
                with connect(
                    stream.url(False),
                    additional_headers=stream.headers(),
                    ssl=stream.ssl_context(),
                    open_timeout=self.client.config.connect_timeout_s,
                    max_size=None,
                    proxy=None,
                ) as ws:
                    self._count(connects=1)
                    offset_us = self._catch_up(ids, tags)
                    failures = 0
                    self._receive(ws, ids, tags, offset_us)
            except AuthenticationError:
                raise
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException, PIWebAPIError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status in (401, 403):
                    raise AuthenticationError(
                        f"PI Web API refused the channel upgrade with {status} for GET /streamsets/channel: "
                        "check PI_AUTH_METHOD and the credentials",
                        method="GET",
                        path="/streamsets/channel",
                        status=status,
                    ) from None
                if self._stop.is_set():
                    return
                failures += 1
                delay = random.uniform(0.0, min(self.backoff_max_s, 0.25 * 2**failures))
                with self._lock:
                    self.stats.reconnects += 1
                    self.stats.last_error = f"channel {index}: {type(exc).__name__}: {exc}"
                log.warning(
                    "channel %d dropped (%s: %s); reconnecting in %.2fs",
                    index,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._stop.wait(delay)

    def _catch_up(self, ids: list[str], tags: pl.DataFrame) -> int:
        """Spool recorded values after each stream's coverage up to the server time now (the channel, already open,
        delivers what follows). Returns the server-minus-local clock offset in µs, for latency figures."""
        now = self._server_now()
        offset_us = to_us(now) - to_us(datetime.now(UTC))
        covered = self.spool.covered()
        since = {w: covered[w] for w in ids if w in covered}
        if since and min(since.values()) < now:
            last = pl.DataFrame(
                {"web_id": list(since), "_after": [to_us(t) for t in since.values()]},
                schema={"web_id": pl.Utf8, "_after": pl.Int64},
            )
            got = 0
            for page in self.client.iter_recorded(list(since), min(since.values()), now, include_end=True):
                page = page.join(last, on="web_id").filter(
                    pl.col("timestamp").dt.epoch("us") > pl.col("_after")
                )
                if page.height:
                    got += page.height
                    self.spool.append(self._rows(page.drop("_after"), tags, "gap", offset_us))
            self._count(gap_reads=1, gap_values=got)
        self.spool.append(pl.DataFrame(schema=SPOOL_SCHEMA), covered=(ids, now))
        return offset_us

    def _receive(
        self, ws: websockets.sync.client.ClientConnection, ids: list[str], tags: pl.DataFrame, offset_us: int
    ) -> None:
        last_heard = time.monotonic()
        while not self._stop.is_set():
            try:
                raw = ws.recv(timeout=0.25)
            except TimeoutError:
                # Neither data nor heartbeat for too long: the connection is half-open or the server stalled.
                if time.monotonic() - last_heard > self.silence_timeout_s:
                    self._count(silence_timeouts=1)
                    raise TimeoutError(
                        f"no message or heartbeat for {self.silence_timeout_s:.1f}s on /streamsets/channel"
                    ) from None
                continue
            last_heard = time.monotonic()
            frame = channel_message_frame(orjson.loads(raw))
            if frame.is_empty():
                self._count(heartbeats=1)
                continue
            rows = self._rows(frame, tags, "channel", offset_us)
            # One poll delivers every change up to the server's now for all streams of the channel, so the
            # newest timestamp in the message bounds what the whole channel has delivered.
            self.spool.append(rows, covered=(ids, from_us(to_us(frame["timestamp"].max()))))
            self._count(messages=1, values=rows.height)

    @staticmethod
    def _rows(frame: pl.DataFrame, tags: pl.DataFrame, origin: str, offset_us: int) -> pl.DataFrame:
        received = datetime.now(UTC)
        server_received_us = to_us(received) + offset_us
        return (
            frame.join(tags, on="web_id", how="left")
            .with_columns(
                pl.lit(origin).alias("origin"),
                pl.lit(received, dtype=SPOOL_SCHEMA["received_at"]).alias("received_at"),
                (pl.lit(server_received_us) - pl.col("timestamp").dt.epoch("us")).alias("lag_us"),
            )
            .select(list(SPOOL_SCHEMA))
            .cast(dict(SPOOL_SCHEMA))
        )


def listen(
    client: PIWebAPIClient,
    spool: Spool,
    tags: pl.DataFrame | Sequence[str],
    stop: threading.Event,
    **options: object,
) -> ListenerStats:
    """Run a listener until `stop` is set; `tags` is a (web_id, tag) frame or plain web ids."""
    if not isinstance(tags, pl.DataFrame):
        tags = pl.DataFrame({"web_id": list(tags), "tag": [None] * len(tags)}, schema=TAGS_SCHEMA)
    listener = ChannelListener(client, spool, tags, **options)  # type: ignore[arg-type]
    listener.run(stop)
    return listener.stats
