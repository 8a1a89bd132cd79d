"""Health and metrics endpoint of the streaming processes: GET /livez, /readyz and /metrics (Prometheus text).

One `StreamHealth` gathers the figures of the listener and/or the lander running in this process and the spool
backlog; `HealthServer` serves them over HTTP on a loopback (or configured) address, for systemd checks,
Kubernetes probes and Prometheus scrapes (docs/streaming.md, "Health and metrics").
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from osipi_dagster.lib.streaming.lander import backlog
from osipi_dagster.lib.streaming.spool import SpoolReader

log = logging.getLogger(__name__)

DEFAULT_LISTENER_ADDRESS = "127.0.0.1:9808"
DEFAULT_LANDER_ADDRESS = "127.0.0.1:9809"
PREFIX = "osipi_stream_"

# figure key → (metric name without prefix, kind, help). Counters get Prometheus' `_total` suffix.
LISTENER_METRICS: dict[str, tuple[str, str, str]] = {
    "channels": ("channels", "gauge", "WebSocket channels the listener subscribes through"),
    "channels_connected": ("channels_connected", "gauge", "channels connected and caught up (streaming)"),
    "streams": ("streams", "gauge", "PI streams subscribed"),
    "connects": ("connects", "counter", "channel connections opened"),
    "reconnects": ("reconnects", "counter", "channel drops followed by a reconnect"),
    "messages": ("messages", "counter", "channel messages carrying values"),
    "heartbeats": ("heartbeats", "counter", "empty channel messages (heartbeats)"),
    "values": ("values_received", "counter", "values received on channels"),
    "gap_reads": ("gap_reads", "counter", "catch-up reads of recorded values after a (re)connect"),
    "gap_values": ("gap_values", "counter", "values spooled by catch-up reads"),
    "silence_timeouts": ("silence_timeouts", "counter", "connections given up after silence"),
    "values_per_s": ("values_per_second", "gauge", "values received per second over the last 10 s"),
    "lag_p50_s": ("lag_p50_seconds", "gauge", "median lag behind PI (server time at receipt - PI timestamp)"),
    "lag_max_s": ("lag_max_seconds", "gauge", "largest lag behind PI over the last 10 s"),
    "last_message_age_s": (
        "last_message_age_seconds",
        "gauge",
        "seconds since the last message or heartbeat",
    ),
}
LANDER_METRICS: dict[str, tuple[str, str, str]] = {
    "landings": ("landings", "counter", "batches landed"),
    "commits": ("commits", "counter", "Delta commits made by landings"),
    "values_read": ("landed_values_read", "counter", "spooled values read by landings"),
    "values_inserted": ("landed_values_inserted", "counter", "values inserted into Delta"),
    "values_superseded": (
        "landed_values_superseded",
        "counter",
        "values refused: the archive owns their hour",
    ),
    "errors": ("landing_errors", "counter", "failed landing attempts (retried)"),
    "compactions": ("compactions", "counter", "compaction passes that merged small files"),
    "compaction_errors": ("compaction_errors", "counter", "failed compaction passes (retried next interval)"),
    "last_latency_p50_s": (
        "landing_latency_p50_seconds",
        "gauge",
        "last landing: median PI timestamp to commit",
    ),
    "last_latency_p95_s": (
        "landing_latency_p95_seconds",
        "gauge",
        "last landing: p95 PI timestamp to commit",
    ),
    "last_duration_s": ("landing_duration_seconds", "gauge", "last landing: seconds spent"),
    "delta_version": ("delta_version", "gauge", "Delta version of the last landing commit"),
}
SPOOL_METRICS: dict[str, tuple[str, str, str]] = {
    "spool_backlog_segments": ("spool_backlog_segments", "gauge", "sealed segments waiting to land"),
    "spool_backlog_bytes": ("spool_backlog_bytes", "gauge", "bytes of sealed segments waiting to land"),
    "spool_oldest_ready_age_s": (
        "spool_oldest_ready_age_seconds",
        "gauge",
        "age of the oldest waiting segment",
    ),
}


class Part(Protocol):
    """A listener or lander as the endpoint sees it."""

    def figures(self) -> dict[str, object]: ...
    def alive(self) -> list[str]: ...
    def ready(self) -> list[str]: ...


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class StreamHealth:
    """Figures, liveness and readiness of what runs in this process (listener, lander or both) over one spool."""

    def __init__(
        self, spool: SpoolReader, *, listener: Part | None = None, lander: Part | None = None
    ) -> None:
        if listener is None and lander is None:
            raise ValueError("StreamHealth needs a listener, a lander or both")
        self.spool = spool
        self.listener = listener
        self.lander = lander
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # type: ignore[arg-type]

    def figures(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {"spool": backlog(self.spool)}
        if self.listener is not None:
            out["listener"] = self.listener.figures()
        if self.lander is not None:
            out["lander"] = {k: v for k, v in self.lander.figures().items() if k not in out["spool"]}
        return out

    def live(self) -> list[str]:
        return [p for part in (self.listener, self.lander) if part is not None for p in part.alive()]

    def ready(self) -> list[str]:
        return [p for part in (self.listener, self.lander) if part is not None for p in part.ready()]

    # prometheus_client custom collector: figures are read at scrape time.
    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        tables = {"listener": LISTENER_METRICS, "lander": LANDER_METRICS, "spool": SPOOL_METRICS}
        for part, values in figures.items():
            for key, (name, kind, doc) in tables[part].items():
                value = values.get(key)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                yield family(PREFIX + name, doc, value=float(value))
        for part in ("listener", "lander"):
            values = figures.get(part)
            if values is None:
                continue
            error = GaugeMetricFamily(
                PREFIX + "last_error_timestamp_seconds",
                "when the last error happened (text in the error label), 0 = none since start",
                labels=["component", "error"],
            )
            text = str(values.get("last_error") or "")[:200]
            error.add_metric([part, text], _timestamp(values.get("last_error_at")) or 0.0)
            yield error
        yield GaugeMetricFamily(
            PREFIX + "ready", "1 when /readyz answers 200", value=0.0 if self.ready() else 1.0
        )

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    health: StreamHealth

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.health.metrics_text(), CONTENT_TYPE_LATEST)
        elif path in ("/livez", "/healthz"):
            self._probe(self.health.live())
        elif path == "/readyz":
            self._probe(self.health.ready())
        elif path == "/status":
            self._send(200, orjson.dumps(self.health.figures()), "application/json")
        else:
            self._send(404, b"not found: try /livez, /readyz, /metrics or /status\n", "text/plain")

    def _probe(self, problems: list[str]) -> None:
        body: dict[str, Any] = {"status": "ok" if not problems else "failing", "problems": problems}
        self._send(200 if not problems else 503, orjson.dumps(body) + b"\n", "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("health %s " + format, self.address_string(), *args)


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) → (host, port); a clear error otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"health address {address!r} is not HOST:PORT (e.g. 127.0.0.1:9808, [::1]:9808)")
    return host.strip("[]"), int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class HealthServer:
    """The HTTP endpoint in a daemon thread; `address` is the bound HOST:PORT (port 0 picks a free one)."""

    def __init__(self, health: StreamHealth, address: str) -> None:
        host, port = parse_address(address)
        handler = type("Handler", (_Handler,), {"health": health})
        server_cls = _Server6 if ":" in host else _Server
        self.server = server_cls((host, port), handler)
        bound_host, bound_port = self.server.server_address[:2]
        self.address = (
            f"[{bound_host}]:{bound_port}" if ":" in str(bound_host) else f"{bound_host}:{bound_port}"
        )
        self._thread = threading.Thread(target=self.server.serve_forever, name="health-http", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics on http://%s (/livez, /readyz, /metrics)", self.address)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
