"""REST requests to PI Web API: a pooled httpx.Client on the shared `Connection`, the retry policy applied to each
request, the circuit breaker and the client's stats.

Every REST call of the client goes through `HTTPSession.request` (WebSocket channels open their own sockets, on the
same `Connection`: channels.py); errors come out as `PIWebAPIError`s naming the request, the status and the fix.
Parallel calls share the pool through `HTTPSession.map_ordered` (bounded threads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies

import httpx
import orjson

from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.connection import Connection, timeout_of
from osipi_dagster.lib.piwebapi.errors import (
    AuthenticationError,
    CircuitOpenError,
    PIWebAPIError,
    ResponseError,
    TLSVerificationError,
    server_messages,
)
from osipi_dagster.lib.retry import (
    RETRY_AFTER_STATUSES,
    certificate_failure,
    retry_after_s,
    retryable_status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_AUTH_ADVICE = {
    "anonymous": "the server requires authentication: set PI_AUTH_METHOD (basic, bearer or kerberos) and credentials",
    "basic": "check PI_USERNAME/PI_PASSWORD",
    "bearer": "check PI_BEARER_TOKEN or the OIDC client credentials (PI_OIDC_CLIENT_ID/PI_OIDC_CLIENT_SECRET)",
    "kerberos": "check the Kerberos ticket (kinit) and that the account may use PI Web API",
}


@dataclass
class ClientStats:
    """Counters for run metadata and benchmarks. `http_calls` counts attempts (retries included)."""

    http_calls: int = 0
    bytes_received: int = 0
    retries: int = 0
    values: int = 0
    # Web ids a stream-set read skipped because the server answered 404 for them (deleted tag, stale id):
    # web id → the server's message. Callers surface these (run metadata, logs); the other streams were read.
    missing_web_ids: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, nbytes: int = 0, retries: int = 0, values: int = 0) -> None:
        with self._lock:
            self.http_calls += calls
            self.bytes_received += nbytes
            self.retries += retries
            self.values += values

    def note_missing(self, web_id: str, reason: str) -> None:
        with self._lock:
            self.missing_web_ids[web_id] = reason

    def as_dict(self) -> dict[str, int]:
        return {
            "http_calls": self.http_calls,
            "bytes_received": self.bytes_received,
            "retries": self.retries,
            "values": self.values,
        }

    def reset(self) -> None:
        with self._lock:
            self.http_calls = self.bytes_received = self.retries = self.values = 0
            self.missing_web_ids = {}


class CircuitBreaker:
    """Opens after `threshold` consecutive connection failures, or when a call exhausts its retries.

    While open (for `cooldown_s`) every call fails at once with the reason, so a dead server fails a run in
    seconds with one clear error instead of every asset retrying for minutes.
    """

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._consecutive = 0
        self._open_until = 0.0
        self.reason = ""

    def check(self, method: str, path: str) -> None:
        with self._lock:
            if time.monotonic() < self._open_until:
                raise CircuitOpenError(
                    f"PI Web API circuit breaker is open, not sending {method} {path}: {self.reason}",
                    method=method,
                    path=path,
                    advice="the server failed repeatedly; fix it (or the URL) and re-run",
                )

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0

    def connection_failure(self, reason: str) -> bool:
        """Record one failed connection; True if the breaker opened."""
        with self._lock:
            self._consecutive += 1
            if self._consecutive >= self.threshold:
                self._open(reason)
                return True
            return False

    def trip(self, reason: str) -> None:
        with self._lock:
            self._open(reason)

    def _open(self, reason: str) -> None:
        self._open_until = time.monotonic() + self.cooldown_s
        self.reason = reason


class _Retryable(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(
        self, error: PIWebAPIError, retry_after: float | None = None, connection: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.connection = connection


class LazyTransport(httpx.BaseTransport):
    """A transport built on its first request (with its TLS context), closed with the client if it was built."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._transport: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._transport is None:
                self._transport = self._build()
        return self._transport.handle_request(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HTTPSession:
    """A pooled, authenticated httpx.Client on a `Connection`, plus the breaker and a bounded thread pool.

    `sleep` is the retry policy's wait (tests pass a recorder); the channels of the client share `connection`.
    """

    def __init__(self, config: ClientConfig, *, sleep: Callable[[float], object] = time.sleep) -> None:
        self.config = config
        self.connection = Connection.build(config, sleep=sleep)
        self.auth = self.connection.auth
        self.retry = self.connection.retry
        self.stats = ClientStats()
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cooldown_s)
        self._base_path = urlsplit(config.base_url).path.rstrip("/")
        # One keep-alive connection per worker thread, plus headroom for the caller's own thread.
        limits = httpx.Limits(
            max_connections=config.max_concurrency + 2,
            max_keepalive_connections=config.max_concurrency + 2,
            keepalive_expiry=60.0,
        )
        # A plain-http server (and no proxy from the environment): its requests need no TLS context, so it is built
        # only if an https:// URL (an absolute link) is ever requested, by the transport mounted for those.
        lazy_tls = not self.connection.is_tls and not getproxies()
        self.client = httpx.Client(
            base_url=config.base_url + "/",
            auth=self.auth,
            verify=False if lazy_tls else self.connection.ssl,
            mounts={
                "https://": LazyTransport(
                    lambda: httpx.HTTPTransport(verify=self.connection.ssl, limits=limits)
                )
            }
            if lazy_tls
            else None,
            timeout=timeout_of(config),
            limits=limits,
            headers={"Accept": "application/json", "User-Agent": config.user_agent},
            follow_redirects=False,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.client.close()

    def __repr__(self) -> str:
        return f"HTTPSession(base_url={self.config.base_url!r}, auth={self.auth!r})"

    # -- helpers ---------------------------------------------------------------------------------------------------
    def display_path(self, url: str) -> str:
        """'/dataservers' for both 'dataservers' and 'https://h/piwebapi/dataservers?x=1' (for error messages)."""
        if "://" in url:
            path = urlsplit(url).path
            if path.startswith(self._base_path):
                path = path[len(self._base_path) :]
            return path or "/"
        return "/" + url.split("?", 1)[0].lstrip("/")

    def url_for(self, url: str) -> str:
        return url if "://" in url else url.lstrip("/")

    # -- one request with the retry policy ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json_body: Any = None,
        web_id: str | None = None,
        parse: bool = True,
        accept_status: frozenset[int] = frozenset({200, 201, 202, 204, 207}),
    ) -> Any:
        """Send with retries; return the decoded JSON body (or raw bytes if parse=False)."""
        path = self.display_path(url)
        attempts = self.retry.attempts()
        while True:
            self.breaker.check(method, path)
            try:
                result = self._attempt(method, url, path, params, json_body, web_id, parse, accept_status)
            except _Retryable as failure:
                opened = failure.connection and self.breaker.connection_failure(str(failure.error))
                delay = None if opened else attempts.next_delay(failure.retry_after)
                if delay is None:
                    made = attempts.made
                    tried = f"after {made} attempt{'s' if made > 1 else ''}"
                    if not opened:
                        self.breaker.trip(f"{failure.error} ({tried})")
                    err = failure.error
                    raise err.reworded(f"{err.message} ({tried})") from None
                log.info("retrying %s %s in %.2fs: %s", method, path, delay, failure.error)
                self.stats.add(retries=1)
                attempts.wait(delay)
                continue
            self.breaker.success()
            return result

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        params: Any,
        json_body: Any,
        web_id: str | None,
        parse: bool,
        accept_status: frozenset[int],
    ) -> Any:
        headers = {}
        content = None
        if method != "GET":
            # PI Web API's CSRF defence rejects non-GET requests without this header.
            headers["X-Requested-With"] = "XMLHttpRequest"
        if json_body is not None:
            content = orjson.dumps(json_body)
            headers["Content-Type"] = "application/json"
        where = f"{method} {path}" + (f" (web id {web_id})" if web_id else "")
        try:
            response = self.client.request(
                method, self.url_for(url), params=params, content=content, headers=headers
            )
            body = response.content
        except httpx.TransportError as exc:
            self.stats.add(calls=1)
            untrusted = certificate_failure(exc)
            if untrusted is not None:
                # The one transport failure that is not transient: no retry can make the certificate trusted.
                raise TLSVerificationError.of(
                    untrusted, method=method, path=path, url=self.config.base_url
                ) from None
            raise self._transport_failure(exc, method, path, web_id, where) from None
        self.stats.add(calls=1, nbytes=len(body))
        status = response.status_code
        if status not in accept_status:
            parsed: Any = None
            try:
                parsed = orjson.loads(body) if body else None
            except orjson.JSONDecodeError:
                parsed = body[:200].decode("utf-8", "replace")
            err = PIWebAPIError.for_status(
                status, method, path, web_id=web_id, server_errors=server_messages(parsed)
            )
            if isinstance(err, AuthenticationError) and status == 401:
                err = AuthenticationError(
                    f"PI Web API returned 401 for {where}",
                    method=method,
                    path=path,
                    status=401,
                    web_id=web_id,
                    server_errors=err.server_errors,
                    advice=_AUTH_ADVICE[self.config.auth.method],
                )
            if retryable_status(status):
                wait = (
                    retry_after_s(response.headers.get("Retry-After"))
                    if status in RETRY_AFTER_STATUSES
                    else None
                )
                raise _Retryable(err, retry_after=wait)
            raise err
        if not parse:
            return body
        if not body:
            return None
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            # A 2xx with a body that is not JSON: a truncated transfer (proxies sometimes do this).
            raise _Retryable(
                ResponseError(
                    f"PI Web API sent an unreadable (truncated?) body of {len(body)} bytes for {where}",
                    method=method,
                    path=path,
                    status=status,
                    web_id=web_id,
                    advice="retried; if it persists check proxies between the client and PI Web API",
                )
            ) from None
        check_web_exception(decoded, method, path, web_id)
        return decoded

    def _transport_failure(
        self, exc: httpx.TransportError, method: str, path: str, web_id: str | None, where: str
    ) -> _Retryable:
        """The retryable error for a failed transfer, worded by what failed: timeout, connect, or a broken body."""
        if isinstance(exc, httpx.TimeoutException):
            message = f"PI Web API timed out ({type(exc).__name__}) for {where}"
            advice = "the server is slow or overloaded; raise timeout_s or narrow the request"
        elif isinstance(exc, httpx.ConnectError):
            message = f"cannot connect to PI Web API at {self.config.base_url} for {where} ({exc})"
            advice = "check PI_WEB_API_URL, DNS, firewall and that PI Web API is running"
        else:
            # Connection reset / dropped mid-body (RemoteProtocolError, ReadError): the body is incomplete.
            message = f"connection to PI Web API broke during {where} ({type(exc).__name__})"
            advice = "the network or a proxy dropped the response; retry later"
        error = PIWebAPIError(message, method=method, path=path, web_id=web_id, advice=advice)
        return _Retryable(error, connection=isinstance(exc, httpx.ConnectError))

    # -- parallel ------------------------------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.config.max_concurrency, thread_name_prefix="piwebapi"
                )
            return self._pool

    def map_ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """fn over items on the pool, results in input order, at most 2×max_concurrency in flight (bounded memory)."""
        items = list(items)
        if len(items) <= 1 or self.config.max_concurrency == 1:
            for item in items:
                yield fn(item)
            return
        pool = self._executor()
        window = 2 * self.config.max_concurrency
        pending: deque[Future[R]] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def check_web_exception(body: Any, method: str, path: str, web_id: str | None = None) -> None:
    """A non-null WebException means the server failed while writing the body: retry, never accept the data."""
    if isinstance(body, dict):
        web_exc = body.get("WebException")
        if web_exc:
            status = web_exc.get("StatusCode") if isinstance(web_exc, dict) else None
            where = f"{method} {path}" + (f" (web id {web_id})" if web_id else "")
            raise _Retryable(
                ResponseError(
                    f"PI Web API reported a WebException (status {status}) inside a 2xx response for {where}",
                    method=method,
                    path=path,
                    status=status if isinstance(status, int) else None,
                    web_id=web_id,
                    server_errors=server_messages(web_exc),
                    advice="the server failed while streaming the body; the data was discarded",
                )
            )
