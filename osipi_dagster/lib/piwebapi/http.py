"""The one place that talks HTTP: pooled httpx.Client, retries with backoff, Retry-After, circuit breaker, stats.

Every request of the client goes through `HTTPSession.request_json`; errors come out as `PIWebAPIError`s naming the
request, the status and the fix. Parallel calls share the pool through `HTTPSession.map_ordered` (bounded threads).
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson

from osipi_dagster.lib.piwebapi.auth import build_auth
from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.errors import (
    AuthenticationError,
    CircuitOpenError,
    PIWebAPIError,
    ResponseError,
    TLSVerificationError,
    server_messages,
    tls_verification_failure,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# 501 Not Implemented will not get better by asking again; every other 5xx may.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
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


def _ssl_verify(config: ClientConfig) -> ssl.SSLContext | bool:
    if not config.verify_tls:
        return False
    if config.ca_bundle:
        return ssl.create_default_context(cafile=config.ca_bundle)
    return True


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HTTPSession:
    """A pooled, authenticated httpx.Client plus the retry/breaker policy and a bounded thread pool."""

    def __init__(self, config: ClientConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.stats = ClientStats()
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cooldown_s)
        self._sleep = sleep
        self._rng = random.Random()
        verify = _ssl_verify(config)
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self.auth = build_auth(config.auth, token_client=lambda: httpx.Client(verify=verify, timeout=timeout))
        self._base_path = urlsplit(config.base_url).path.rstrip("/")
        self.client = httpx.Client(
            base_url=config.base_url + "/",
            auth=self.auth,
            verify=verify,
            timeout=timeout,
            # One keep-alive connection per worker thread, plus headroom for the caller's own thread.
            limits=httpx.Limits(
                max_connections=config.max_concurrency + 2,
                max_keepalive_connections=config.max_concurrency + 2,
                keepalive_expiry=60.0,
            ),
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

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)] spreads retry storms.
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * (2**attempt))
        return self._rng.uniform(0.0, cap)

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
        deadline = time.monotonic() + self.config.retry_budget_s
        attempt = 0
        while True:
            self.breaker.check(method, path)
            try:
                result = self._attempt(method, url, path, params, json_body, web_id, parse, accept_status)
            except _Retryable as failure:
                opened = failure.connection and self.breaker.connection_failure(str(failure.error))
                remaining = deadline - time.monotonic()
                delay = self._backoff(attempt)
                if failure.retry_after is not None:
                    delay = failure.retry_after
                if opened or attempt >= self.config.max_retries or delay > remaining:
                    tried = f"after {attempt + 1} attempt{'s' if attempt else ''}"
                    if not opened:
                        self.breaker.trip(f"{failure.error} ({tried})")
                    err = failure.error
                    raise err.reworded(f"{err.message} ({tried})") from None
                log.info("retrying %s %s in %.2fs: %s", method, path, delay, failure.error)
                self.stats.add(retries=1)
                if delay > 0:
                    self._sleep(delay)
                attempt += 1
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
        except httpx.TimeoutException as exc:
            self.stats.add(calls=1)
            raise _Retryable(
                PIWebAPIError(
                    f"PI Web API timed out ({type(exc).__name__}) for {where}",
                    method=method,
                    path=path,
                    web_id=web_id,
                    advice="the server is slow or overloaded; raise timeout_s or narrow the request",
                )
            ) from None
        except httpx.ConnectError as exc:
            self.stats.add(calls=1)
            untrusted = tls_verification_failure(exc)
            if untrusted is not None:
                # Not a connection problem: no retry can make the certificate trusted.
                raise TLSVerificationError.of(
                    untrusted, method=method, path=path, url=self.config.base_url
                ) from None
            raise _Retryable(
                PIWebAPIError(
                    f"cannot connect to PI Web API at {self.config.base_url} for {where} ({exc})",
                    method=method,
                    path=path,
                    web_id=web_id,
                    advice="check PI_WEB_API_URL, DNS, firewall and that PI Web API is running",
                ),
                connection=True,
            ) from None
        except httpx.TransportError as exc:
            # Connection reset / dropped mid-body (RemoteProtocolError, ReadError): the body is incomplete.
            self.stats.add(calls=1)
            raise _Retryable(
                PIWebAPIError(
                    f"connection to PI Web API broke during {where} ({type(exc).__name__})",
                    method=method,
                    path=path,
                    web_id=web_id,
                    advice="the network or a proxy dropped the response; retry later",
                )
            ) from None
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
            if status in _RETRY_STATUSES:
                raise _Retryable(err, retry_after=_retry_after(response) if status in (429, 503) else None)
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
