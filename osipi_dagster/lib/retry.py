"""The one retry policy of the library: what is worth trying again, how long to wait, and when to give up.

`RetryPolicy` holds the numbers (retries, deadline, backoff base and cap) and the one injectable clock, sleep and
random source; `policy.attempts()` starts the bookkeeping of one operation. Waits are exponential with full jitter
(uniform in [0, min(cap, base·2ⁿ)], AWS architecture blog), or the server's `Retry-After` when it sent one.
The HTTP session, batch sub-requests, WebSocket channels, the streaming listener, Delta commit races and streamed
landing all wait through it, each with its own numbers (docs/architecture.md, "Who retries what").
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

# 501 Not Implemented will not get better by asking again; every other 5xx may, and so may 408 and 429.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The statuses whose Retry-After header is honoured (RFC 9110: 503; RFC 6585: 429).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def retryable_status(status: int | None) -> bool:
    """True for an HTTP status that may succeed when asked again (408, 429, 500, 502, 503, 504)."""
    return status in RETRYABLE_STATUSES


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind `exc` (httpx, httpcore and websockets wrap it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def transient_error(exc: BaseException) -> bool:
    """A network failure worth another attempt: timeouts, refused or dropped connections, broken transfers.

    Never a certificate that failed verification (no retry makes it trusted) and never a refused WebSocket upgrade
    with 401/403 (credentials do not improve by waiting); an upgrade refused with another status may.
    """
    # Imported here: the lake writer uses this module for commit races and needs neither network library.
    import httpx
    import websockets

    if certificate_failure(exc) is not None:
        return False
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return False
    return isinstance(
        exc, httpx.TransportError | TimeoutError | OSError | websockets.exceptions.WebSocketException
    )


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None if absent
    or unreadable. A date in the past means 0. `now` is the wall-clock time (time.time()) the date is measured from."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of operation retries.

    max_retries: attempts after the first (None: only the deadline bounds them); deadline_s: the most time from the
    first attempt that a wait may reach (None: no deadline); a wait that would pass it gives up instead. `sleep`,
    `clock` (monotonic) and `rng` are the seams tests replace; one policy is shared by everything that uses it.
    """

    max_retries: int | None = 5
    deadline_s: float | None = None
    backoff_base_s: float = 0.25
    backoff_max_s: float = 20.0
    sleep: Callable[[float], object] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more (or None), got {self.max_retries}.")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must be 0 or more.")

    def backoff(self, retry: int) -> float:
        """The jittered wait before retry number `retry` (0 for the first): uniform in [0, min(cap, base·2^retry)]."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** min(retry, 64)))
        return self.rng.uniform(0.0, cap)

    def attempts(self) -> Attempts:
        """Start one operation: its deadline runs from now."""
        return Attempts(self)

    def with_sleep(self, sleep: Callable[[float], object]) -> RetryPolicy:
        """The same policy waiting through `sleep` (e.g. an Event's wait, so a stop request ends the wait)."""
        return replace(self, sleep=sleep)


class Attempts:
    """The retry bookkeeping of one operation under a `RetryPolicy`: call `next_delay` (or `pause`) after each
    failed attempt; `retries` counts the retries granted so far."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.retries = 0
        self._deadline = None if policy.deadline_s is None else policy.clock() + policy.deadline_s

    @property
    def made(self) -> int:
        """Attempts made so far, counting the one that just failed: retries granted + 1."""
        return self.retries + 1

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """After a failed attempt: the seconds to wait before the next one, or None when the policy gives up (its
        retries are spent, or the wait would pass the deadline). The server's `retry_after` replaces the backoff."""
        policy = self.policy
        if policy.max_retries is not None and self.retries >= policy.max_retries:
            return None
        delay = policy.backoff(self.retries) if retry_after is None else max(0.0, retry_after)
        if self._deadline is not None and delay > self._deadline - policy.clock():
            return None
        self.retries += 1
        return delay

    def wait(self, delay: float) -> None:
        """Wait `delay` seconds through the policy's sleep (nothing for 0)."""
        if delay > 0:
            self.policy.sleep(delay)

    def pause(self, retry_after: float | None = None) -> bool:
        """`next_delay` then `wait`; False (without waiting) when the policy gives up."""
        delay = self.next_delay(retry_after)
        if delay is None:
            return False
        self.wait(delay)
        return True
