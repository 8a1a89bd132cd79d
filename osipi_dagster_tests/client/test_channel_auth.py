"""A channel shares its client's auth object: the WebSocket upgrade carries the OIDC token the REST calls fetched,
from the same cache (one token request for both), against a real emulator requiring bearer tokens."""

from __future__ import annotations

import httpx
import pytest

from osipi_dagster.lib.piwebapi import AuthConfig, AuthenticationError, ClientConfig, PIWebAPIClient
from osipi_dagster_tests.emulator import Emulator

FROZEN = ("--seed", "42", "--tags", "20", "--clock", "frozen:2024-05-01T12:00:00Z")


def oidc(emu: Emulator, secret: str = "osipi-secret") -> AuthConfig:
    return AuthConfig(
        method="bearer",
        oidc_token_url=f"{emu.root}/identitymanager/connect/token",
        oidc_client_id="osipi",
        oidc_client_secret=secret,
    )


def test_channel_upgrade_uses_the_rest_token_cache(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = emulator_factory(*FROZEN, "--auth", "bearer", "--channel-poll-ms", "40")
    with PIWebAPIClient(ClientConfig(emu.api, auth=oidc(emu))) as pi:
        web_id = next(pi.iter_points(pi.data_servers()[0]))["web_id"][0]
        stream = pi.channel([web_id], heartbeat_rate=1, silence_timeout_s=5)
        assert stream.connection.auth is pi.session.auth
        with stream.open() as ws:
            assert isinstance(ws.recv(timeout=10), str)  # a heartbeat: the upgrade was authorised
        assert pi.session.auth.token_fetches == 1  # type: ignore[attr-defined]
    # Counted by the identity provider: one token for the REST calls and the channel together.
    endpoints = httpx.get(f"{emu.root}/metrics", timeout=5).json()["endpoints"]
    assert endpoints["POST /identitymanager/connect/token"]["requests"] == 1


def test_channel_upgrade_refused_is_a_clear_error(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu: Emulator = emulator_factory(*FROZEN, "--auth", "bearer")
    # A static token the server does not know: REST answers 401, and so does the WebSocket upgrade.
    with PIWebAPIClient(ClientConfig(emu.api, auth=AuthConfig(method="bearer", bearer_token="stale"))) as pi:
        stream = pi.channel(["W1"], max_reconnects=3)
        stream.backfill = None  # the upgrade itself, not the REST clock read before it
        with pytest.raises(AuthenticationError) as info:
            next(iter(stream))
        assert stream.reconnects == 0
    assert str(info.value).startswith(
        "PI Web API refused the channel upgrade with 401 for GET /streamsets/channel"
    )
    assert httpx.get(f"{emu.api}/dataservers", headers={"Authorization": "Bearer stale"}).status_code == 401
