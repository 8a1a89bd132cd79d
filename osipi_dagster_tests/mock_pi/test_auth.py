"""Authentication of mock_pi against real emulators: 401 challenges per mode, Basic, the built-in OIDC token
endpoint, bearer expiry and refresh by the emulator clock, WebSocket upgrades, userinfo, and open plumbing paths.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from osipi_dagster_tests.emulator import Emulator, start_emulator

BASE = ("--tags", "10", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin")
TOKEN_PATH = "/identitymanager/connect/token"
CLIENT = {"client_id": "osipi", "client_secret": "osipi-secret"}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """--auth any (Basic and Bearer) with 60 s tokens."""
    args = (*BASE, "--auth", "any", "--token-ttl-s", "60")
    with start_emulator(*args, log_dir=tmp_path_factory.mktemp("auth")) as emu:
        yield emu


def token(emu: Emulator, **form: str) -> httpx.Response:
    return httpx.post(f"{emu.root}{TOKEN_PATH}", data={"grant_type": "client_credentials", **form}, timeout=5)


def first_point(emu: Emulator, auth: tuple[str, str] | None = None) -> str:
    server = httpx.get(f"{emu.api}/dataservers", auth=auth, timeout=5).json()["Items"][0]
    return str(httpx.get(server["Links"]["Points"], auth=auth, timeout=5).json()["Items"][0]["WebId"])


def challenges(r: httpx.Response) -> list[str]:
    return r.headers.get_list("www-authenticate")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("basic", ['Basic realm="PI Web API"']),
        ("bearer", ['Bearer realm="PI Web API"']),
    ],
)
def test_401_challenge_per_mode(tmp_path: Path, mode: str, expected: list[str]) -> None:
    with start_emulator(*BASE, "--auth", mode, log_dir=tmp_path) as emu:
        r = httpx.get(f"{emu.api}/dataservers", timeout=5)
        assert r.status_code == 401
        assert challenges(r) == expected
        assert r.json() == {"Errors": ["Authorization has been denied for this request."]}
        # Credentials of a scheme that is not enabled are refused the same way.
        other = ("pi-user", "pi-pass") if mode == "bearer" else None
        if other:
            assert httpx.get(f"{emu.api}/dataservers", auth=other, timeout=5).status_code == 401


def test_any_mode_offers_both_challenges(emu: Emulator) -> None:
    r = httpx.get(f"{emu.api}/", timeout=5)
    assert r.status_code == 401
    assert challenges(r) == ['Basic realm="PI Web API"', 'Bearer realm="PI Web API"']


def test_anonymous_mode_needs_no_credentials(tmp_path: Path) -> None:
    with start_emulator(*BASE, log_dir=tmp_path) as emu:
        r = httpx.get(f"{emu.api}/system/userinfo", timeout=5)
        assert r.status_code == 200
        assert r.json()["IsAuthenticated"] is False
        assert r.json()["IdentityType"] == "Anonymous"


def test_basic_ok_and_bad(emu: Emulator) -> None:
    ok = httpx.get(f"{emu.api}/system/userinfo", auth=("pi-user", "pi-pass"), timeout=5)
    assert ok.status_code == 200
    assert ok.json()["Name"] == "pi-user"
    assert ok.json()["IdentityType"] == "Basic"
    assert ok.json()["IsAuthenticated"] is True
    for user, password in (("pi-user", "wrong"), ("someone", "pi-pass"), ("pi-user", "")):
        bad = httpx.get(f"{emu.api}/dataservers", auth=(user, password), timeout=5)
        assert bad.status_code == 401
        assert 'Basic realm="PI Web API"' in challenges(bad)
    garbled = httpx.get(f"{emu.api}/dataservers", headers={"Authorization": "Basic !!notbase64"}, timeout=5)
    assert garbled.status_code == 401


def test_token_endpoint_issues_opaque_tokens(emu: Emulator) -> None:
    r = token(emu, **CLIENT, scope="osisoftpiwebapi")
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    assert body["scope"] == "osisoftpiwebapi"
    assert r.headers["cache-control"] == "no-store"
    # Client authentication with HTTP Basic is accepted too, and every token is different.
    basic = httpx.post(
        f"{emu.root}{TOKEN_PATH}",
        data={"grant_type": "client_credentials"},
        auth=("osipi", "osipi-secret"),
        timeout=5,
    )
    assert basic.status_code == 200
    assert basic.json()["access_token"] != body["access_token"]
    me = httpx.get(
        f"{emu.api}/system/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    )
    assert me.status_code == 200
    assert me.json()["Name"] == "osipi"
    assert me.json()["IdentityType"] == "Bearer"


def test_token_endpoint_errors(emu: Emulator) -> None:
    bad_secret = token(emu, client_id="osipi", client_secret="nope")
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"
    bad_basic = httpx.post(
        f"{emu.root}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=("osipi", "x"), timeout=5
    )
    assert bad_basic.status_code == 401
    assert bad_basic.headers["www-authenticate"].startswith("Basic")
    grant = httpx.post(f"{emu.root}{TOKEN_PATH}", data={"grant_type": "password", **CLIENT}, timeout=5)
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    as_json = httpx.post(
        f"{emu.root}{TOKEN_PATH}", json={"grant_type": "client_credentials", **CLIENT}, timeout=5
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


def test_token_expires_by_the_emulator_clock_and_refreshes(emu: Emulator) -> None:
    access = token(emu, **CLIENT).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert httpx.get(f"{emu.api}/dataservers", headers=headers, timeout=5).status_code == 200
    advance = httpx.post(f"{emu.root}/admin/clock", json={"Advance": "59s"}, timeout=5)
    assert advance.status_code == 200
    assert httpx.get(f"{emu.api}/dataservers", headers=headers, timeout=5).status_code == 200
    httpx.post(f"{emu.root}/admin/clock", json={"Advance": "1s"}, timeout=5).raise_for_status()
    expired = httpx.get(f"{emu.api}/dataservers", headers=headers, timeout=5)
    assert expired.status_code == 401
    assert (
        'Bearer realm="PI Web API", error="invalid_token", error_description="The access token expired"'
        in challenges(expired)
    )
    fresh = token(emu, **CLIENT).json()["access_token"]
    ok = httpx.get(f"{emu.api}/dataservers", headers={"Authorization": f"Bearer {fresh}"}, timeout=5)
    assert ok.status_code == 200


def test_unknown_token_is_invalid(emu: Emulator) -> None:
    r = httpx.get(f"{emu.api}/dataservers", headers={"Authorization": "Bearer not-a-token"}, timeout=5)
    assert r.status_code == 401
    assert any('error="invalid_token"' in c and "not valid" in c for c in challenges(r))


def test_plumbing_paths_bypass_auth(emu: Emulator) -> None:
    assert httpx.get(f"{emu.root}/health", timeout=5).status_code == 200
    assert httpx.get(f"{emu.root}/metrics", timeout=5).status_code == 200
    discovery = httpx.get(f"{emu.api}/.well-known/openid-configuration", timeout=5)
    assert discovery.status_code == 200
    assert discovery.json()["token_endpoint"] == f"{emu.root}{TOKEN_PATH}"
    assert "client_credentials" in discovery.json()["grant_types_supported"]


def test_websocket_upgrade_is_authenticated(emu: Emulator) -> None:
    web_id = first_point(emu, auth=("pi-user", "pi-pass"))
    url = f"ws://127.0.0.1:{emu.port}/piwebapi/streams/{web_id}/channel?includeInitialValues=true"

    async def connect(headers: dict[str, str] | None) -> str:
        async with websockets.connect(url, additional_headers=headers) as ws:
            return str(await asyncio.wait_for(ws.recv(), 10))

    with pytest.raises(InvalidStatus) as err:
        asyncio.run(connect(None))
    assert err.value.response.status_code == 401
    assert err.value.response.headers.get_all("WWW-Authenticate") == [
        'Basic realm="PI Web API"',
        'Bearer realm="PI Web API"',
    ]
    message = asyncio.run(
        connect({"Authorization": "Basic " + base64.b64encode(b"pi-user:pi-pass").decode()})
    )
    assert web_id in message


def test_negotiate_without_keytab_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--auth negotiate is not supported"):
        start_emulator(*BASE, "--auth", "negotiate", log_dir=tmp_path)
