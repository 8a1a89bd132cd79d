"""Channel listener: PI Web API stream-set channels → the durable spool, gap-free across drops and restarts.

Owns tag selection for streaming, splitting streams into channels whose upgrade URL fits the client's URL limit, one
WebSocket per channel (reconnect with backoff, heartbeat/silence detection), and the catch-up read of recorded values
for every span the spool does not cover, re-reading a late-data allowance before it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import orjson
import polars as pl
import websockets

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.selection import pi_name_filter_regex
from osipi_dagster.lib.landing.tables import POINTS_TABLE
from osipi_dagster.lib.piwebapi import (
    AuthenticationError,
    ClientConfig,
    PIWebAPIClient,
    PIWebAPIError,
    TLSVerificationError,
)
from osipi_dagster.lib.piwebapi.channels import DROPPED, channel_message_frame, channel_url
from osipi_dagster.lib.retry import RetryPolicy
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Spool, to_us

log = logging.getLogger(__name__)

TAGS_SCHEMA = pl.Schema({"web_id": pl.Utf8, "tag": pl.Utf8})
# Buffered PI interfaces deliver values late (after a network outage, minutes late); every (re)connect re-reads
# this much before each stream's coverage, and landing drops what is already in the lake by key.
DEFAULT_LATE_ALLOWANCE_S = 300.0
# A catch-up read covers at most this many seconds per call: an outage of hours is read and spooled in slices.
DEFAULT_CATCH_UP_SLICE_S = 600.0
# Rates and lags in the figures are over the messages of this many last seconds.
FIGURES_WINDOW_S = 10.0
# The sealer loop must have turned within this many seconds for the process to count as alive.
STALE_LOOP_S = 30.0


def channel_groups(
    config: ClientConfig,
    web_ids: Sequence[str],
    *,
    heartbeat_rate: int | None = 5,
    max_streams: int | None = None,
) -> list[list[str]]:
    """Split streams into channels whose upgrade URL (`/streamsets/channel?webId=..`) fits `config.max_url_bytes`.

    The byte count is taken from the URL the channel really opens (channel_url), so WebId length, escaping
    and the extra parameters are all included; `max_streams` optionally caps streams per channel as well.
    """
    if not web_ids:
        return []
    if max_streams is not None and max_streams < 1:
        raise ValueError(f"max_streams must be at least 1, got {max_streams}")

    def cost(w: str) -> int:
        return len(f"webId={quote(w, safe='')}&".encode())

    first = channel_url(config.base_url, [web_ids[0]], False, heartbeat_rate)
    fixed = len(first.encode()) - cost(web_ids[0])
    limit = config.max_url_bytes
    groups: list[list[str]] = []
    current: list[str] = []
    size = fixed
    for w in web_ids:
        c = cost(w)
        if fixed + c > limit:
            raise ValueError(
                f"the channel URL for WebId {w!r} alone is {fixed + c} bytes, over max_url_bytes={limit}: "
                "raise the client's max_url_bytes (and the server's URL limit) or subscribe with shorter WebIds"
            )
        if current and (size + c > limit or len(current) == max_streams):
            groups.append(current)
            current, size = [], fixed
        current.append(w)
        size += c
    if current:
        groups.append(current)
    return groups


def _lookback_groups(starts: dict[str, datetime], now: datetime) -> list[tuple[datetime, list[str]]]:
    """Group streams by how far back their catch-up read starts (powers of two of the look-back in seconds), so
    one read per group over-reads at most twice a stream's own span: a quiet stream covered hours ago must not make
    every busy stream re-read hours of values."""
    buckets: dict[int, list[str]] = {}
    for w, start in starts.items():
        seconds = max(1.0, (now - start).total_seconds())
        buckets.setdefault(int(math.log2(seconds)), []).append(w)
    return [(min(starts[w] for w in ids), ids) for _, ids in sorted(buckets.items())]


def tags_matching(lake: Lake, tag_filter: str, table: str = POINTS_TABLE) -> pl.DataFrame:
    """Current catalogue rows (web_id, tag) whose name matches a PI name filter (`*`, `?`, case-insensitive)."""
    ref = lake.table(table)
    if not ref.exists():
        raise FileNotFoundError(
            f"Delta table {ref.uri} does not exist: materialize pi/pi_points first, or pass explicit --web-id values"
        )
    return (
        ref.scan()
        .filter(pl.col("is_current") & pl.col("name").str.contains(pi_name_filter_regex(tag_filter)))
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
    last_error_at: str | None = None
    process_started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class ChannelListener:
    """Subscribe `tags` (web_id, tag) in channels that fit the client's URL limit and spool everything they deliver.

    Coverage is tracked per stream from what was received (a channel message is not chronological and says nothing
    about streams it does not carry). On every (re)connect the listener first reads recorded values from each
    stream's coverage minus `late_allowance_s` up to the server time after the connection opened, so drops, crashes,
    restarts and values a buffered interface delivered late leave no gap; overlaps are removed on the key when
    landing.
    """

    def __init__(
        self,
        client: PIWebAPIClient,
        spool: Spool,
        tags: pl.DataFrame,
        *,
        channel_size: int | None = None,
        heartbeat_rate: int = 5,
        silence_timeout_s: float = 30.0,
        backoff_max_s: float = 10.0,
        late_allowance_s: float = DEFAULT_LATE_ALLOWANCE_S,
        catch_up_slice_s: float = DEFAULT_CATCH_UP_SLICE_S,
    ) -> None:
        if tags.is_empty():
            raise ValueError("the listener needs at least one tag to subscribe to")
        if late_allowance_s < 0:
            raise ValueError(f"late_allowance_s must be 0 or more, got {late_allowance_s}")
        self.client = client
        self.spool = spool
        self.tags = (
            tags.select(list(TAGS_SCHEMA)).cast(dict(TAGS_SCHEMA)).unique("web_id", maintain_order=True)
        )
        self.channel_size = channel_size
        self.heartbeat_rate = heartbeat_rate
        self.silence_timeout_s = silence_timeout_s
        self.backoff_max_s = backoff_max_s
        self.late_allowance = timedelta(seconds=late_allowance_s)
        if catch_up_slice_s <= 0:
            raise ValueError(f"catch_up_slice_s must be > 0, got {catch_up_slice_s}")
        self.catch_up_slice = timedelta(seconds=catch_up_slice_s)
        ids = self.tags["web_id"].to_list()
        self.channels = channel_groups(
            client.config, ids, heartbeat_rate=heartbeat_rate or None, max_streams=channel_size
        )
        prior = spool.listener_state()
        self.stats = ListenerStats(
            started_at=prior.get("started_at"), channels=len(self.channels), streams=len(ids)
        )
        # First ever start: each channel's streams are covered from its own first connect, so the spool is gap-free
        # for every stream from the latest of those instants (a restart keeps the original start).
        self._first_start = self.stats.started_at is None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        # Live figures: channels streaming (connected and caught up), recent messages (monotonic time, values,
        # median and max lag in s), the last message or heartbeat, the sealer loop's last turn.
        self._streaming: set[int] = set()
        self._recent: deque[tuple[float, int, float, float]] = deque()
        self._last_heard: float | None = None
        self._started_mono = self._loop_beat = time.monotonic()
        self.sealed = (
            threading.Event()
        )  # set whenever a segment may have been sealed (wakes an embedded lander)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._started_mono = time.monotonic()
        self._loop_beat = self._started_mono
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
            self._loop_beat = time.monotonic()
            self._publish()
            if self.spool.seal_if_due() is not None:
                self.sealed.set()

    def _publish(self) -> None:
        self.spool.publish_state(self.figures())

    # -- figures, liveness, readiness (health.py serves them) ---------------------------------------------------
    def figures(self) -> dict[str, object]:
        """Counters since start plus live figures: channels streaming, values/s and lag over FIGURES_WINDOW_S,
        seconds since the last message or heartbeat."""
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0][0] > FIGURES_WINDOW_S:
                self._recent.popleft()
            recent = list(self._recent)
            out: dict[str, object] = asdict(self.stats)
            out["channels_connected"] = len(self._streaming)
        span = min(FIGURES_WINDOW_S, max(1e-3, now - self._started_mono))
        lags = sorted(m for _, _, m, _ in recent)
        out["values_per_s"] = round(sum(n for _, n, _, _ in recent) / span, 3)
        out["lag_p50_s"] = round(lags[len(lags) // 2], 3) if lags else None
        out["lag_max_s"] = round(max(x for _, _, _, x in recent), 3) if recent else None
        out["last_message_age_s"] = None if self._last_heard is None else round(now - self._last_heard, 3)
        out["published_at"] = datetime.now(UTC).isoformat()
        return out

    def alive(self) -> list[str]:
        """Why the listener is not alive (empty = alive): a fatal error, a dead thread or a stuck sealer loop."""
        problems = []
        if self._error is not None:
            problems.append(f"stopped by a fatal error: {type(self._error).__name__}: {self._error}")
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead and not self._stop.is_set():
            problems.append(f"threads not running: {', '.join(dead)}")
        if time.monotonic() - self._loop_beat > STALE_LOOP_S:
            problems.append(f"spool sealer loop has not turned for {STALE_LOOP_S:.0f}s")
        return problems

    def ready(self) -> list[str]:
        """Why the listener is not ready (empty = ready): every channel connected and caught up."""
        with self._lock:
            streaming = len(self._streaming)
        if streaming < len(self.channels):
            return [
                f"{len(self.channels) - streaming} of {len(self.channels)} channels not connected and caught up"
            ]
        return []

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, d in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + d)

    # -- one channel ---------------------------------------------------------------------------------------------
    def _server_now(self) -> datetime:
        return self.client.server_time()

    def _reconnect_policy(self) -> RetryPolicy:
        """Reconnect for as long as the listener runs: the client's backoff base, `backoff_max_s` as the cap, and
        waits that a stop request ends at once."""
        return RetryPolicy(
            max_retries=None,
            backoff_base_s=self.client.config.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            sleep=self._stop.wait,
        )

    def _run_channel(self, index: int, ids: list[str]) -> None:
        # The client's channel: the same TLS context, auth (token cache included) and URL as its REST calls.
        stream = self.client.channel(ids, heartbeat_rate=self.heartbeat_rate or None)
        tags = self.tags.filter(pl.col("web_id").is_in(ids))
        policy = self._reconnect_policy()
        attempts = policy.attempts()
        while not self._stop.is_set():
            try:
                # Streams the spool has never covered start here: nothing before this instant is wanted.
                covered = self.spool.covered()
                fresh = {w for w in ids if w not in covered}
                if fresh:
                    floor = self._server_now()
                    self.spool.append(pl.DataFrame(schema=SPOOL_SCHEMA), covered=(fresh, floor))
                    with self._lock:
                        if self._first_start:
                            earlier = self.stats.started_at
                            if earlier is None or datetime.fromisoformat(earlier) < floor:
                                self.stats.started_at = floor.isoformat()
                with stream.open() as ws:
                    self._count(connects=1)
                    offset_us = self._catch_up(ids, tags, fresh)
                    attempts = policy.attempts()
                    with self._lock:
                        self._streaming.add(index)
                    try:
                        self._receive(ws, ids, tags, offset_us)
                    finally:
                        with self._lock:
                            self._streaming.discard(index)
            except (AuthenticationError, TLSVerificationError):
                raise
            except (*DROPPED, PIWebAPIError) as exc:
                # An untrusted certificate or a refused upgrade: reconnecting cannot fix it, so stop visibly.
                try:
                    stream.check(exc)
                except AuthenticationError as refused:
                    raise refused.reworded(
                        f"{refused.message}: check PI_AUTH_METHOD and the credentials"
                    ) from None
                if self._stop.is_set():
                    return
                delay = attempts.next_delay() or 0.0
                with self._lock:
                    self.stats.reconnects += 1
                    self.stats.last_error = f"channel {index}: {type(exc).__name__}: {exc}"
                    self.stats.last_error_at = datetime.now(UTC).isoformat()
                log.warning(
                    "channel %d dropped (%s: %s); reconnecting in %.2fs",
                    index,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                attempts.wait(delay)

    def _catch_up(self, ids: list[str], tags: pl.DataFrame, fresh: set[str]) -> int:
        """Spool recorded values after each stream's coverage (minus the late allowance, except for streams that
        start now) up to the server time now; the channel, already open, delivers what follows. Returns the
        server-minus-local clock offset in µs, for latency figures."""
        now = self._server_now()
        offset_us = to_us(now) - to_us(datetime.now(UTC))
        covered = self.spool.covered()
        since = {
            w: covered[w] if w in fresh else covered[w] - self.late_allowance for w in ids if w in covered
        }
        since = {w: t for w, t in since.items() if t < now}
        if since:
            last = pl.DataFrame(
                {"web_id": list(since), "_after": [to_us(t) for t in since.values()]},
                schema={"web_id": pl.Utf8, "_after": pl.Int64},
            )
            got = 0
            for start, group in _lookback_groups(since, now):
                # Read in time slices: an outage of hours is spooled slice by slice, in bounded memory.
                lo = start
                while lo < now:
                    hi = min(now, lo + self.catch_up_slice)
                    for page in self.client.iter_recorded(group, lo, hi, include_end=hi == now):
                        page = page.join(last, on="web_id").filter(
                            pl.col("timestamp").dt.epoch("us") > pl.col("_after")
                        )
                        if page.height:
                            got += page.height
                            self.spool.append(self._rows(page.drop("_after"), tags, "gap", offset_us))
                    lo = hi
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
            last_heard = self._last_heard = time.monotonic()
            frame = channel_message_frame(orjson.loads(raw))
            if frame.is_empty():
                self._count(heartbeats=1)
                continue
            rows = self._rows(frame, tags, "channel", offset_us)
            # Coverage advances per stream, to the newest value received of that stream (the spool derives it from
            # the rows): a message is not chronological across streams and says nothing about streams it omits.
            self.spool.append(rows)
            lag = rows["lag_us"]
            with self._lock:
                self.stats.messages += 1
                self.stats.values += rows.height
                self._recent.append(
                    (last_heard, rows.height, float(lag.median() or 0) / 1e6, float(lag.max() or 0) / 1e6)  # type: ignore[arg-type]
                )

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
