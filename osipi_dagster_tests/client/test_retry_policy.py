"""The one retry policy (osipi_dagster/lib/retry.py): Retry-After forms, backoff cap and jitter, attempts and
deadline, what is retryable; and that the HTTP session, batch re-sends and channel reconnects all wait through the
policy's one injectable sleep (recorded here: nothing in this file really sleeps).
"""

from __future__ import annotations

import random
import ssl
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.http11 import Response

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, PIWebAPIError, batch
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.piwebapi.connection import Connection
from osipi_dagster.lib.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    retry_after_s,
    retryable_status,
    transient_error,
)
from osipi_dagster_tests.client.canned import CannedServer
from osipi_dagster_tests.emulator import free_port

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only sleeping advances; `waits` records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


# -- the policy ---------------------------------------------------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s("0.5") == 0.5
    assert retry_after_s("-3") == 0.0
    assert retry_after_s(None) is None and retry_after_s("") is None
    assert retry_after_s("soon") is None
    date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)  # 'Wed, 01 May 2024 12:01:30 GMT'
    assert date.endswith("GMT")
    assert retry_after_s(date, now=NOW.timestamp()) == 90.0
    # A date already past means "now", never a negative wait.
    assert retry_after_s(date, now=(NOW + timedelta(minutes=5)).timestamp()) == 0.0


def test_backoff_is_full_jitter_under_the_exponential_cap() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=6.0, rng=random.Random(11))
    for retry in range(8):
        cap = min(6.0, 0.5 * 2**retry)
        samples = [policy.backoff(retry) for _ in range(400)]
        assert all(0.0 <= s <= cap for s in samples), retry
        # Spread over the whole interval (full jitter), not bunched at one end.
        assert min(samples) < 0.1 * cap and max(samples) > 0.9 * cap, retry
    # The seeded source makes the waits reproducible.
    first = [RetryPolicy(rng=random.Random(3)).backoff(n) for n in range(5)]
    again = [RetryPolicy(rng=random.Random(3)).backoff(n) for n in range(5)]
    assert first == again
    # A huge retry number stays at the cap (no overflow).
    assert 0.0 <= policy.backoff(10_000) <= 6.0


def test_max_retries_bounds_the_attempts() -> None:
    fake = FakeTime()
    policy = RetryPolicy(
        max_retries=3, backoff_base_s=1.0, backoff_max_s=1.0, sleep=fake.sleep, clock=fake.clock
    )
    attempts = policy.attempts()
    assert [attempts.pause() for _ in range(5)] == [True, True, True, False, False]
    assert attempts.retries == 3 and attempts.made == 4
    assert len(fake.waits) == 3 and all(0.0 <= w <= 1.0 for w in fake.waits)
    # No retries at all: the first failure is final.
    assert RetryPolicy(max_retries=0).attempts().next_delay() is None


def test_deadline_gives_up_instead_of_waiting_past_it() -> None:
    fake = FakeTime()
    policy = RetryPolicy(max_retries=None, deadline_s=10.0, sleep=fake.sleep, clock=fake.clock)
    attempts = policy.attempts()
    assert attempts.pause(retry_after=4.0) and attempts.pause(retry_after=4.0)
    assert fake.now == 8.0
    # 2 s are left: a 4 s Retry-After would pass the deadline, so the policy gives up without waiting.
    assert attempts.next_delay(retry_after=4.0) is None
    assert fake.waits == [4.0, 4.0]
    assert attempts.next_delay(retry_after=2.0) == 2.0  # one that still fits is granted


def test_retry_after_replaces_the_backoff_and_zero_does_not_sleep() -> None:
    fake = FakeTime()
    policy = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.02, sleep=fake.sleep, clock=fake.clock)
    attempts = policy.attempts()
    assert attempts.next_delay(retry_after=30.0) == 30.0  # the server's word, above the backoff cap
    assert attempts.pause(retry_after=0.0)
    assert fake.waits == []  # a zero wait is no call to sleep


def test_which_statuses_are_retryable() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRYABLE_STATUSES
    assert all(retryable_status(s) for s in (408, 429, 500, 502, 503, 504))
    assert not any(retryable_status(s) for s in (None, 200, 400, 401, 403, 404, 409, 413, 501))


def test_which_exceptions_are_transient() -> None:
    request = httpx.Request("GET", "https://pi/piwebapi/")
    untrusted = httpx.ConnectError("certificate verify failed", request=request)
    untrusted.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert transient_error(httpx.ConnectError("refused", request=request))
    assert transient_error(httpx.ReadTimeout("slow", request=request))
    assert transient_error(httpx.RemoteProtocolError("peer closed", request=request))
    assert transient_error(ConnectionRefusedError()) and transient_error(TimeoutError())
    assert transient_error(ConnectionClosedError(None, None))
    assert transient_error(InvalidStatus(Response(503, "Service Unavailable", Headers())))
    assert not transient_error(untrusted)
    assert not transient_error(InvalidStatus(Response(401, "Unauthorized", Headers())))
    assert not transient_error(InvalidStatus(Response(403, "Forbidden", Headers())))
    assert not transient_error(ValueError("a bug, not the network"))


# -- its users ----------------------------------------------------------------------------------------------------


class Flaky:
    """Answers `failures` times with (status, headers) before the real answer, per path."""

    def __init__(self, status: int, headers: dict[str, str], failures: int) -> None:
        self.status, self.headers = status, headers
        self.left: Counter[str] = Counter()
        self.failures = failures

    def __call__(self, path: str, query: dict[str, list[str]]) -> tuple[Any, ...]:
        if self.left[path] < self.failures:
            self.left[path] += 1
            return self.status, {"Errors": ["busy"]}, self.headers
        return 200, {"Path": path}


def session_client(server: CannedServer, fake: FakeTime, **options: Any) -> PIWebAPIClient:
    config = ClientConfig(server.api, **{"backoff_base_s": 0.5, "backoff_max_s": 2.0, **options})
    return PIWebAPIClient(config, sleep=fake.sleep)


def test_session_waits_retry_after_through_the_injected_sleep() -> None:
    fake = FakeTime()
    with (
        CannedServer(Flaky(503, {"Retry-After": "3"}, failures=2)) as server,
        session_client(server, fake) as pi,
    ):
        assert pi.session.request("GET", "dataservers") == {"Path": "/dataservers"}
        assert pi.stats.retries == 2 and pi.stats.http_calls == 3
    assert fake.waits == [3.0, 3.0]


def test_session_honours_an_http_date_retry_after() -> None:
    fake = FakeTime()
    # Whole seconds on the wire: the wait is between 119 and 120 s of the machine's clock.
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    server = CannedServer(Flaky(429, {"Retry-After": when}, failures=1))
    with server, session_client(server, fake, retry_budget_s=600.0) as pi:
        pi.session.request("GET", "dataservers")
    [wait] = fake.waits
    assert 115.0 < wait <= 120.0


def test_session_gives_up_at_once_when_retry_after_passes_its_budget() -> None:
    fake = FakeTime()
    server = CannedServer(Flaky(503, {"Retry-After": "600"}, failures=5))
    with server, session_client(server, fake, retry_budget_s=60.0) as pi:
        with pytest.raises(PIWebAPIError) as info:
            pi.session.request("GET", "dataservers")
        assert pi.stats.http_calls == 1 and pi.stats.retries == 0
    assert fake.waits == []
    assert info.value.status == 503
    assert str(info.value).startswith("PI Web API returned 503 for GET /dataservers")
    assert "(after 1 attempt)" in str(info.value)


def test_session_backoff_without_retry_after_stays_under_the_cap_and_501_is_final() -> None:
    fake = FakeTime()
    with (
        CannedServer(Flaky(500, {}, failures=4)) as server,
        session_client(server, fake, max_retries=4) as pi,
    ):
        pi.session.request("GET", "dataservers")
    caps = [min(2.0, 0.5 * 2**n) for n in range(4)]
    assert len(fake.waits) == 4 and all(0.0 <= w <= cap for w, cap in zip(fake.waits, caps, strict=True))

    fake = FakeTime()
    with CannedServer(Flaky(501, {}, failures=1)) as server, session_client(server, fake) as pi:
        with pytest.raises(PIWebAPIError) as info:
            pi.session.request("GET", "dataservers")
        assert pi.stats.http_calls == 1
    assert info.value.status == 501 and fake.waits == []


def test_batch_resends_wait_through_the_session_sleep() -> None:
    fake = FakeTime()
    # Each sub-request fails twice inside the 207 before answering: two re-sends, both waited through the policy.
    with (
        CannedServer(Flaky(500, {}, failures=2)) as server,
        session_client(server, fake, max_retries=3) as pi,
    ):
        contents, errors = batch.get_many(
            pi.session, {"a": f"{server.api}/points/A", "b": f"{server.api}/points/B"}
        )
        assert pi.stats.retries == 4  # two sub-requests re-sent twice each
    assert errors == {}
    assert contents == {"a": {"Path": "/points/A"}, "b": {"Path": "/points/B"}}
    assert len(fake.waits) == 2 and all(
        0.0 <= w <= cap for w, cap in zip(fake.waits, (0.5, 1.0), strict=True)
    )


def test_channel_reconnects_wait_through_the_connection_sleep() -> None:
    fake = FakeTime()
    api = f"http://127.0.0.1:{free_port()}/piwebapi"  # nothing listens there
    connection = Connection.build(ClientConfig(api, backoff_base_s=0.5, backoff_max_s=2.0), sleep=fake.sleep)
    stream = ChannelStream(connection, ["W1"], max_reconnects=2)
    with pytest.raises(PIWebAPIError, match=r"channel /streamsets/channel failed 3 times in a row") as info:
        next(iter(stream))
    assert "EnableChannels" in str(info.value)
    assert stream.reconnects == 2
    assert len(fake.waits) == 2 and all(
        0.0 <= w <= cap for w, cap in zip(fake.waits, (0.5, 1.0), strict=True)
    )
