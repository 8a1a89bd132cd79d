"""Seeded, reproducible fault injection for /piwebapi requests: latency, jitter, 502/503 bursts, 429, hangs, dropped
connections and 200-with-WebException bodies; owns `FaultMiddleware` (which also serves `GET|POST /admin/faults`).

A fault is a pure function of (seed, request identity, attempt number of that identity), so a test can predict it with
`decide()` and two runs with the same seed and request sequence see the same faults, even with concurrent clients.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_pi.http import JSON_TYPE, error_response, json_response

# Error fault kinds, in the order their probability bands are laid out on [0, 1).
ERROR_KINDS = ("flaky", "ratelimit", "timeout", "drop", "webexception")
DEFAULT_RATES = {"flaky": 0.1, "ratelimit": 0.1, "timeout": 0.05, "drop": 0.05, "webexception": 0.05}
# chaos:<r> spreads r over every kind; its hangs are short so a chaos run stays usable in tests and demos.
CHAOS_SHARES = {"flaky": 0.35, "ratelimit": 0.2, "timeout": 0.1, "drop": 0.15, "webexception": 0.2}
CHAOS_DEFAULT_RATE = 0.2
CHAOS_JITTER_MS = 20.0
CHAOS_HANG_S = 5.0
MAX_HANG_S = 300.0
MAX_BURST = 3
LOG_SIZE = 10_000
ADMIN_PATH = "/admin/faults"
FAULT_HEADER = b"x-mock-pi-fault"
# The body PI Web API sends when it fails while streaming a response (samples/errors_webexception.json).
WEB_EXCEPTION_BODY = {
    "WebException": {"Errors": ["Error occurred during writing of the output stream."], "StatusCode": 500}
}


class FaultProfileError(ValueError):
    """A --faults profile or POST /admin/faults body that cannot be parsed."""


@dataclass(frozen=True)
class FaultProfile:
    """A parsed profile such as 'latency:20ms+flaky:0.2' (see `parse`)."""

    spec: str = "none"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    retry_after_s: int = 1
    hang_s: float = 30.0

    @property
    def injects_errors(self) -> bool:
        return any(rate > 0 for rate in self.rates.values())

    @property
    def active(self) -> bool:
        return self.injects_errors or self.latency_ms > 0 or self.jitter_ms > 0

    @classmethod
    def parse(cls, spec: str) -> FaultProfile:
        """Parse '+'-joined terms: none | latency:<dur> | jitter:<dur> | flaky[:rate] |
        ratelimit[:rate][,retry=<s>] | timeout[:rate][,hang=<dur>] | drop[:rate] | webexception[:rate] | chaos[:rate].

        A rate is a probability per request (0.1 or 10%); a duration is '20ms', '1.5s' or a bare number of ms.
        """
        latency = jitter = 0.0
        rates: dict[str, float] = {}
        retry_after = 1
        hang: float | None = None
        text = spec.strip() or "none"
        for term in text.split("+"):
            name, _, arg_text = term.strip().partition(":")
            name = name.strip().lower()
            positional, options = _split_args(term, arg_text)
            if name == "none":
                continue
            if name in ("latency", "jitter"):
                if positional is None:
                    raise FaultProfileError(f"fault term {term!r} needs a duration, e.g. {name}:20ms")
                ms = _duration_ms(positional, term)
                if name == "latency":
                    latency += ms
                else:
                    jitter += ms
            elif name in ERROR_KINDS:
                rate = _rate(positional, term) if positional is not None else DEFAULT_RATES[name]
                rates[name] = rates.get(name, 0.0) + rate
                if "retry" in options and name == "ratelimit":
                    retry_after = max(1, round(_duration_ms(options.pop("retry"), term, unit="s") / 1000))
                if "hang" in options and name == "timeout":
                    hang = _duration_ms(options.pop("hang"), term, unit="s") / 1000
            elif name == "chaos":
                total = _rate(positional, term) if positional is not None else CHAOS_DEFAULT_RATE
                for kind, share in CHAOS_SHARES.items():
                    rates[kind] = rates.get(kind, 0.0) + total * share
                jitter += CHAOS_JITTER_MS
                hang = CHAOS_HANG_S if hang is None else hang
            else:
                raise FaultProfileError(
                    f"unknown fault {name!r} in {spec!r}; use none, latency:<ms>, jitter:<ms>, "
                    f"{', '.join(ERROR_KINDS)} or chaos, joined with '+'"
                )
            if options:
                raise FaultProfileError(f"unknown option(s) {', '.join(options)} in fault term {term!r}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise FaultProfileError(
                f"fault rates in {spec!r} add up to {sum(rates.values()):.3f}, more than 1"
            )
        hang_s = 30.0 if hang is None else hang
        if not 0 < hang_s <= MAX_HANG_S:
            raise FaultProfileError(
                f"timeout hang must be in (0, {MAX_HANG_S:.0f}] s, got {hang_s} s in {spec!r}"
            )
        return cls(
            spec=text,
            latency_ms=latency,
            jitter_ms=jitter,
            rates={k: v for k, v in rates.items() if v > 0},
            retry_after_s=retry_after,
            hang_s=hang_s,
        )


def _split_args(term: str, arg_text: str) -> tuple[str | None, dict[str, str]]:
    positional: str | None = None
    options: dict[str, str] = {}
    for part in (p.strip() for p in arg_text.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if eq:
            options[key.strip().lower()] = value.strip()
        elif positional is None:
            positional = part
        else:
            raise FaultProfileError(f"fault term {term!r} has more than one positional argument")
    return positional, options


def _duration_ms(text: str, term: str, unit: str = "ms") -> float:
    raw = text.strip().lower()
    try:
        if raw.endswith("ms"):
            value = float(raw[:-2])
        elif raw.endswith("s"):
            value = float(raw[:-1]) * 1000
        else:
            value = float(raw) * (1000 if unit == "s" else 1)
    except ValueError:
        raise FaultProfileError(
            f"bad duration {text!r} in fault term {term!r}; use e.g. 20ms or 1.5s"
        ) from None
    if value < 0:
        raise FaultProfileError(f"negative duration {text!r} in fault term {term!r}")
    return value


def _rate(text: str, term: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise FaultProfileError(f"bad rate {text!r} in fault term {term!r}; use e.g. 0.1 or 10%") from None
    if not 0 <= value <= 1:
        raise FaultProfileError(f"rate {text!r} in fault term {term!r} is not between 0 and 1")
    return value


def _uniform(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) that depends only on its inputs (stable across processes, unlike hash())."""
    digest = hashlib.blake2b("\x1f".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class Decision:
    """What happens to one request: an error fault (or None) and the delay added before it is handled."""

    kind: str | None
    delay_s: float
    status: int | None = None
    # For drop: the share of the body (0.1-0.9) sent before the connection is closed.
    cut_fraction: float = 0.5


def _kind_at(profile: FaultProfile, seed: int, identity: str, attempt: int) -> str | None:
    u = _uniform(seed, "fault", identity, attempt)
    edge = 0.0
    for kind in ERROR_KINDS:
        edge += profile.rates.get(kind, 0.0)
        if u < edge:
            return kind
    return None


def decide(profile: FaultProfile, seed: int, identity: str, attempt: int) -> Decision:
    """The fault for the `attempt`-th (0-based) request with this identity ('GET /piwebapi/x?query').

    A flaky attempt starts a burst of 1..3 failures of the same identity, so a client retrying it meets a run of
    502/503s, as behind a restarting load-balanced back end.
    """
    delay_ms = profile.latency_ms
    if profile.jitter_ms:
        delay_ms += profile.jitter_ms * _uniform(seed, "jitter", identity, attempt)
    kind = _kind_at(profile, seed, identity, attempt) if profile.rates else None
    if kind is None and profile.rates.get("flaky"):
        for back in range(1, MAX_BURST):
            start = attempt - back
            if start < 0:
                break
            burst = 1 + int(_uniform(seed, "burst", identity, start) * MAX_BURST)
            if _kind_at(profile, seed, identity, start) == "flaky" and burst > back:
                kind = "flaky"
                break
    status = {
        "flaky": 503 if _uniform(seed, "status", identity, attempt) < 0.7 else 502,
        "ratelimit": 429,
        "timeout": 504,
        "webexception": 200,
    }.get(kind or "")
    cut = 0.1 + 0.8 * _uniform(seed, "cut", identity, attempt)
    return Decision(kind=kind, delay_s=delay_ms / 1000, status=status, cut_fraction=cut)


def request_identity(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('method', 'GET')} {scope['path']}" + (f"?{query}" if query else "")


class FaultInjector:
    """The live profile plus per-identity attempt counters and a log of injected faults (for replay checks)."""

    def __init__(self, profile: FaultProfile, seed: int) -> None:
        self._lock = threading.Lock()
        self.configure(profile, seed)

    def configure(self, profile: FaultProfile, seed: int) -> None:
        """Switch profile (and seed); counters restart so a schedule replays from its beginning."""
        with self._lock:
            self.profile = profile
            self.seed = seed
            self._attempts: dict[str, int] = {}
            self.requests = 0
            self.injected = 0
            self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def next_decision(self, identity: str) -> Decision:
        with self._lock:
            profile, seed = self.profile, self.seed
            sequence = self.requests
            self.requests += 1
            if profile.injects_errors:
                attempt = self._attempts.get(identity, 0)
                self._attempts[identity] = attempt + 1
            else:
                attempt = 0
        decision = decide(profile, seed, identity, attempt)
        if decision.kind is not None:
            with self._lock:
                self.injected += 1
                self.log.append(
                    {"seq": sequence, "request": identity, "attempt": attempt, "fault": decision.kind}
                )
        return decision

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "profile": self.profile.spec,
                "seed": self.seed,
                "latency_ms": self.profile.latency_ms,
                "jitter_ms": self.profile.jitter_ms,
                "rates": dict(self.profile.rates),
                "retry_after_s": self.profile.retry_after_s,
                "hang_s": self.profile.hang_s,
                "requests": self.requests,
                "injected": self.injected,
                "log": list(self.log),
            }


def injector_for(state: Any) -> FaultInjector:
    """The state's injector, created from config on first use (shared by the middleware and the admin route)."""
    injector = getattr(state, "fault_injector", None)
    if injector is None:
        injector = FaultInjector(FaultProfile.parse(state.config.faults), state.config.seed)
        state.fault_injector = injector
    return injector


def _start(status: int, body: bytes, extra: Iterable[tuple[bytes, bytes]], kind: str) -> Message:
    headers = [
        (b"content-type", JSON_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (FAULT_HEADER, kind.encode()),
        *extra,
    ]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send_json(
    send: Send, status: int, body: Any, kind: str, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    raw = orjson.dumps(body)
    await send(_start(status, raw, extra, kind))
    await send({"type": "http.response.body", "body": raw})


class FaultMiddleware:
    """Applies the live fault profile to HTTP requests under /piwebapi; everything else passes untouched."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state
        self.injector = injector_for(state)  # parses config.faults now, so a bad --faults fails at startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == ADMIN_PATH:
            # The control endpoint lives with the injector it controls (the app's route list does not carry it).
            response = await admin_faults(Request(scope, receive))
            await response(scope, receive, send)
            return
        if scope["type"] != "http" or not (
            scope["path"] == "/piwebapi" or scope["path"].startswith("/piwebapi/")
        ):
            await self.app(scope, receive, send)
            return
        if not self.injector.profile.active:
            await self.app(scope, receive, send)
            return
        identity = request_identity(scope)
        decision = self.injector.next_decision(identity)
        if decision.delay_s > 0:
            await anyio.sleep(decision.delay_s)
        kind = decision.kind
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "flaky":
            message = "Service Unavailable" if decision.status == 503 else "Bad Gateway"
            await _send_json(
                send, decision.status or 503, _errors(f"{message}: the PI back end is unavailable"), kind
            )
        elif kind == "ratelimit":
            retry = str(self.injector.profile.retry_after_s).encode()
            body = _errors("Too many requests: the request rate limit of this client was exceeded")
            await _send_json(send, 429, body, kind, [(b"retry-after", retry)])
        elif kind == "timeout":
            await self._hang(receive, send)
        elif kind == "webexception":
            await _send_json(send, 200, WEB_EXCEPTION_BODY, kind)
        else:
            await self._drop(scope, receive, send, decision.cut_fraction)

    async def _hang(self, receive: Receive, send: Send) -> None:
        """Hold the request without answering; give up when the client disconnects or after hang_s (then 504)."""
        with anyio.move_on_after(self.injector.profile.hang_s):
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await _send_json(
            send, 504, _errors("Gateway Timeout: the PI back end did not answer in time"), "timeout"
        )

    async def _drop(self, scope: Scope, receive: Receive, send: Send, fraction: float) -> None:
        """Forward the real headers and the first part of the body, then return without finishing the response,
        which makes the server close the connection mid-body (the client sees a truncated message). A body of
        fewer than 2 bytes cannot be cut and is delivered whole."""
        cut: int | None = None
        forwarded = 0
        dropped = False

        async def truncating_send(message: Message) -> None:
            nonlocal cut, forwarded, dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                length = next((int(v) for k, v in headers if k.lower() == b"content-length"), None)
                if length is not None and length >= 2:
                    cut = min(length - 1, max(1, int(length * fraction)))
                await send({**message, "headers": [*headers, (FAULT_HEADER, b"drop")]})
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            if cut is None and body and (len(body) >= 2 or message.get("more_body", False)):
                # Streaming response without Content-Length: cut inside the first chunk we see.
                cut = forwarded + max(1, int(len(body) * fraction))
            if cut is not None and forwarded + len(body) >= cut:
                await send({"type": "http.response.body", "body": body[: cut - forwarded], "more_body": True})
                dropped = True
                return
            forwarded += len(body)
            await send(message)

        await self.app(scope, receive, truncating_send)


def _errors(message: str) -> dict[str, list[str]]:
    return {"Errors": [f"{message} (mock_pi fault injection)."]}


async def admin_faults(request: Request) -> Response:
    """GET: the live profile, counters and the log of injected faults. POST {"profile": "...", "seed": n}: switch."""
    state = request.app.state.emulator
    if request.method not in ("GET", "POST"):
        return error_response(405, f"{request.method} is not allowed on {ADMIN_PATH}; use GET or POST.")
    if not state.config.admin:
        return error_response(404, "Admin endpoints are disabled; start mock_pi with --admin.")
    injector = injector_for(state)
    if request.method == "POST":
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError as exc:
            return error_response(
                400, f'POST /admin/faults needs a JSON body like {{"profile": "flaky"}}: {exc}'
            )
        if not isinstance(body, dict) or not isinstance(body.get("profile", ""), str):
            return error_response(
                400, 'POST /admin/faults needs a JSON object like {"profile": "flaky", "seed": 7}.'
            )
        seed = body.get("seed", injector.seed)
        if not isinstance(seed, int):
            return error_response(400, f"seed must be an integer, got {seed!r}.")
        try:
            profile = FaultProfile.parse(body.get("profile", injector.profile.spec))
        except FaultProfileError as exc:
            return error_response(400, str(exc))
        injector.configure(profile, seed)
    return json_response(injector.as_json())
