"""Resilience against a real emulator: every fault profile gives exactly the fault-free answer; auth and breaker errors.

Each fault profile runs on its own private emulator (--faults); expected values come from mock_pi's archive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from osipi_dagster.lib.piwebapi import (
    AuthConfig,
    AuthenticationError,
    CircuitOpenError,
    ClientConfig,
    PIWebAPIClient,
    PIWebAPIError,
)
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator, free_port

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
FROZEN = ("--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z")


def fast_config(api: str, **kw: object) -> ClientConfig:
    """Tiny backoff so retries do not dominate the test time (Retry-After is still honoured)."""
    options: dict[str, object] = {"backoff_base_s": 0.005, "backoff_max_s": 0.05, "max_retries": 8, **kw}
    return ClientConfig(api, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


@pytest.mark.parametrize(
    "profile",
    [
        "flaky:0.3",
        "ratelimit:0.15,retry=1s",
        "timeout:0.15,hang=2s",
        "drop:0.3",
        "webexception:0.3",
        "chaos:0.4",
    ],
)
def test_faults_give_the_fault_free_answer(emulator_factory, expected: Expected, profile: str) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = emulator_factory(*FROZEN, "--faults", profile)
    points = [expected.point(i) for i in range(10, 40)]
    start, end = NOW - timedelta(hours=2), NOW
    with PIWebAPIClient(fast_config(emu.api, timeout_s=0.8, max_items_per_call=1500)) as pi:
        servers = pi.data_servers()
        names = [n for f in pi.iter_points(servers[0], page_size=100) for n in f["name"].to_list()]
        got = pi.recorded([p.web_id for p in points], start, end)
        retries = pi.stats.retries
    assert [s.name for s in servers] == ["PISRV01", "PISRV02"]
    assert names == [expected.point(i).name for i in range(0, 500, 2)]
    assert_same(got, expected.recorded(points, start, end, include_end=False))
    assert retries > 0, f"profile {profile} injected nothing: the test proved nothing"


def test_wrong_password_is_one_clear_401(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = emulator_factory(*FROZEN, "--auth", "basic")
    bad = AuthConfig(method="basic", username="pi-user", password="wrong-pw-123")
    with PIWebAPIClient(ClientConfig(emu.api, auth=bad)) as pi:
        with pytest.raises(AuthenticationError) as info:
            pi.data_servers()
        assert pi.stats.http_calls == 1  # 4xx other than 429 are never retried
    message = str(info.value)
    assert message.startswith("PI Web API returned 401 for GET /dataservers: ")
    assert "check PI_USERNAME/PI_PASSWORD" in message
    assert "wrong-pw-123" not in message
    good = AuthConfig(method="basic", username="pi-user", password="pi-pass")
    with PIWebAPIClient(ClientConfig(emu.api, auth=good)) as pi:
        assert len(pi.data_servers()) == 2


def test_oidc_token_refresh_on_401_and_before_expiry(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = emulator_factory(*FROZEN, "--auth", "bearer", "--admin", "--token-ttl-s", "600")
    auth = AuthConfig(
        method="bearer",
        oidc_token_url=f"{emu.root}/identitymanager/connect/token",
        oidc_client_id="osipi",
        oidc_client_secret="osipi-secret",
    )
    with PIWebAPIClient(ClientConfig(emu.api, auth=auth)) as pi:
        token_auth = pi.session.auth
        assert len(pi.data_servers()) == 2
        assert token_auth.token_fetches == 1  # type: ignore[attr-defined]
        pi.data_servers()
        assert token_auth.token_fetches == 1  # type: ignore[attr-defined]
        # The server's clock jumps past the token's life: the next call meets a 401, refreshes once, retries once.
        httpx.post(f"{emu.root}/admin/clock", json={"Advance": "700s"}).raise_for_status()
        calls = pi.stats.http_calls
        assert len(pi.data_servers()) == 2
        assert token_auth.token_fetches == 2  # type: ignore[attr-defined]
        assert pi.stats.http_calls == calls + 1  # the 401 and its retry live inside one auth flow
    # A margin as long as the token's life means every request refreshes first (refresh *before* expiry).
    eager = AuthConfig(**{**auth.__dict__, "refresh_margin_s": 600.0})
    with PIWebAPIClient(ClientConfig(emu.api, auth=eager)) as pi:
        pi.data_servers()
        pi.data_servers()
        assert pi.session.auth.token_fetches == 2  # type: ignore[attr-defined]
    wrong = AuthConfig(**{**auth.__dict__, "oidc_client_secret": "nope-secret"})
    with PIWebAPIClient(ClientConfig(emu.api, auth=wrong)) as pi, pytest.raises(AuthenticationError) as info:
        pi.data_servers()
    assert "PI_OIDC_CLIENT_ID/PI_OIDC_CLIENT_SECRET" in str(info.value)
    assert "nope-secret" not in str(info.value)


def test_dead_server_fails_fast_with_one_clear_error() -> None:
    api = f"http://127.0.0.1:{free_port()}/piwebapi"  # nothing listens there
    waits: list[float] = []
    with PIWebAPIClient(fast_config(api, breaker_threshold=3), sleep=waits.append) as pi:
        with pytest.raises(PIWebAPIError, match=r"cannot connect to PI Web API .* GET /dataservers") as info:
            pi.data_servers()
        assert "check PI_WEB_API_URL" in str(info.value)
        assert pi.stats.http_calls == 3
        # Failing fast: the breaker's threshold (3) stops the retries (8 allowed), after two short backoffs.
        assert len(waits) == 2 and all(0.0 <= w <= 0.05 for w in waits)
        with pytest.raises(CircuitOpenError, match="circuit breaker is open"):
            pi.recorded(["W1"], NOW - timedelta(hours=1), NOW)
        assert pi.stats.http_calls == 3  # failed without touching the network
        assert len(waits) == 2  # nor waiting for it


def test_unknown_web_id_is_not_retried_and_named(emulator: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        with pytest.raises(PIWebAPIError) as info:
            pi.recorded(["F1DPnotarealwebid"], NOW - timedelta(hours=1), NOW)
        assert pi.stats.http_calls == 1
    assert info.value.status in (400, 404)
    assert "GET /streamsets/recorded" in str(info.value)
