"""Request metrics of the emulator: counters per endpoint (method + route template), status codes, bytes and values.

Owns `Metrics` (held by EmulatorState), the outermost `MetricsMiddleware`, and `GET /metrics`, `POST /metrics/reset`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_pi.http import json_response

API_PREFIX = "/piwebapi"
UNMATCHED = "<unmatched>"
# Polled by the test harness and by benchmarks themselves: counting them would skew "HTTP calls made".
UNCOUNTED_PATHS = frozenset({"/health", "/metrics", "/metrics/reset"})


@dataclass
class EndpointStats:
    requests: int = 0
    bytes_sent: int = 0
    values_served: int = 0
    ws_messages: int = 0
    seconds: float = 0.0
    status: Counter[int] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "requests": self.requests,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "bytes_sent": self.bytes_sent,
            "values_served": self.values_served,
            "seconds": round(self.seconds, 6),
        }
        if self.ws_messages:
            body["ws_messages"] = self.ws_messages
        return body


class _Tally:
    """Values counted while one request is being served (handlers may run in the threadpool)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = 0


_current: ContextVar[_Tally | None] = ContextVar("mock_pi_metrics_tally", default=None)


def count_values(n: int) -> None:
    """Add `n` time-series values to the request being served; serializers call it, a no-op outside a request."""
    tally = _current.get()
    if tally is not None:
        tally.values += n


class Metrics:
    """Thread-safe counters since start (or the last reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, EndpointStats] = {}
        self._since = datetime.now(UTC)

    def record(
        self,
        endpoint: str,
        status: int,
        bytes_sent: int,
        seconds: float,
        values: int = 0,
        ws_messages: int = 0,
    ) -> None:
        with self._lock:
            stats = self._endpoints.get(endpoint)
            if stats is None:
                stats = self._endpoints[endpoint] = EndpointStats()
            stats.requests += 1
            stats.status[status] += 1
            stats.bytes_sent += bytes_sent
            stats.values_served += values
            stats.ws_messages += ws_messages
            stats.seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        """JSON body of GET /metrics: totals, status codes and a per-endpoint breakdown."""
        with self._lock:
            return _render(self._endpoints, self._since)

    def reset(self) -> dict[str, Any]:
        """Zero every counter; returns the counters as they were, so a benchmark can read-and-reset atomically."""
        with self._lock:
            before = _render(self._endpoints, self._since)
            self._endpoints = {}
            self._since = datetime.now(UTC)
        return before


def _render(endpoints: dict[str, EndpointStats], since: datetime) -> dict[str, Any]:
    status: Counter[int] = Counter()
    for s in endpoints.values():
        status.update(s.status)
    return {
        "since": since.isoformat().replace("+00:00", "Z"),
        "requests": sum(s.requests for s in endpoints.values()),
        "status": {str(code): n for code, n in sorted(status.items())},
        "bytes_sent": sum(s.bytes_sent for s in endpoints.values()),
        "values_served": sum(s.values_served for s in endpoints.values()),
        "ws_messages": sum(s.ws_messages for s in endpoints.values()),
        "endpoints": {name: s.as_json() for name, s in sorted(endpoints.items())},
    }


class _RouteIndex:
    """Maps a request back to its route template (Starlette leaves only the matched endpoint in the scope)."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._by_endpoint: dict[int, list[tuple[str, re.Pattern[str]]]] = {}
        self._leaves: list[tuple[str, re.Pattern[str], bool]] = []
        self._walk(routes, "")

    def _walk(self, routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            path = getattr(route, "path", None)
            if path is None:
                continue
            sub = getattr(route, "routes", None)
            endpoint = getattr(route, "endpoint", None)
            if sub:
                self._walk(list(sub), prefix + path)
            elif endpoint is not None:
                template = prefix + path
                regex = compile_path(template)[0]
                self._by_endpoint.setdefault(id(endpoint), []).append((template, regex))
                self._leaves.append((template, regex, isinstance(route, WebSocketRoute)))

    def template(self, scope: Scope, path: str) -> str | None:
        candidates = self._by_endpoint.get(id(scope.get("endpoint")))
        if candidates:
            for template, regex in candidates:
                if regex.match(path):
                    return template
            return candidates[0][0]
        # Not routed (answered by a fault or auth refusal before the router ran): find the route it was meant for.
        websocket = scope["type"] == "websocket"
        for template, regex, is_ws in self._leaves:
            if is_ws == websocket and regex.match(path):
                return template
        return None


_indexes: dict[int, tuple[Any, _RouteIndex]] = {}


def route_template(scope: Scope, path: str) -> str:
    """'/streamsets/recorded' style template of the route for `scope` ('/piwebapi' dropped), or '<unmatched>'."""
    router = scope.get("router")
    if router is None:
        app = scope.get("app")
        router = getattr(app, "router", None)
    if router is None:
        return UNMATCHED
    entry = _indexes.get(id(router))
    if entry is None or entry[0] is not router:
        entry = _indexes[id(router)] = (router, _RouteIndex(list(router.routes)))
    template = entry[1].template(scope, path)
    if template is None:
        # Outside the API the paths are few and fixed (e.g. /admin/faults, served by its middleware): name them.
        return UNMATCHED if path.startswith(API_PREFIX) else path
    if template == API_PREFIX:
        return "/"
    return template.removeprefix(API_PREFIX) if template.startswith(API_PREFIX + "/") else template


def endpoint_name(scope: Scope, path: str) -> str:
    method = "WS" if scope["type"] == "websocket" else scope.get("method", "GET")
    return f"{method} {route_template(scope, path)}"


class MetricsMiddleware:
    """Outermost middleware: it sees what the client sees, including injected faults and auth refusals."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        tally = _Tally()
        token = _current.set(tally)
        status = 0
        sent = 0
        messages = 0
        started = time.perf_counter()

        async def counting_send(message: Message) -> None:
            nonlocal status, sent, messages
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = int(message["status"])
            elif kind in ("http.response.body", "websocket.http.response.body"):
                sent += len(message.get("body", b""))
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.send":
                messages += 1
                data = message.get("bytes") or message.get("text") or b""
                sent += len(data.encode() if isinstance(data, str) else data)
            elif kind == "websocket.close" and status == 0:
                # Closing before accepting is how a server refuses a handshake: the client sees 403.
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except BaseException:
            if status == 0:
                status = 500
            raise
        finally:
            _current.reset(token)
            self.state.metrics.record(
                endpoint_name(scope, path),
                status,
                sent,
                time.perf_counter() - started,
                values=tally.values,
                ws_messages=messages,
            )


async def get_metrics(request: Request) -> Response:
    return json_response(request.app.state.emulator.metrics.snapshot())


async def reset_metrics(request: Request) -> Response:
    return json_response(request.app.state.emulator.metrics.reset())


ROUTES: list[BaseRoute] = [
    Route("/metrics", get_metrics, methods=["GET"]),
    Route("/metrics/reset", reset_metrics, methods=["POST"]),
]
