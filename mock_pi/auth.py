"""Authentication of the emulator's /piwebapi surface: Basic, Bearer (with a built-in OIDC client-credentials token
endpoint and discovery document), Negotiate (Kerberos, with a service keytab), their 401 challenges, and identities.

Owns `AuthMiddleware`, `POST /identitymanager/connect/token` and `GET /piwebapi/.well-known/openid-configuration`.
Negotiate tokens are verified by `mock_pi.negotiate` (gssapi, loaded only when `--keytab` enables Negotiate).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import orjson
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_pi.http import JSON_TYPE, json_response

if TYPE_CHECKING:
    from mock_pi.negotiate import NegotiateAcceptor

REALM = "PI Web API"
TOKEN_PATH = "/identitymanager/connect/token"
DISCOVERY_PATH = "/piwebapi/.well-known/openid-configuration"
# Scope key holding the `Identity` of an authenticated request, for handlers such as /system/userinfo.
SCOPE_KEY = "mock_pi.identity"
# `any` also offers Negotiate (first, as IIS does) when the emulator is given a keytab.
SCHEMES_BY_MODE = {
    "anonymous": (),
    "basic": ("Basic",),
    "bearer": ("Bearer",),
    "negotiate": ("Negotiate",),
    "any": ("Basic", "Bearer"),
}
DENIED = "Authorization has been denied for this request."


@dataclass(frozen=True)
class Identity:
    """Who made a request, in the terms of PI Web API's /system/userinfo."""

    name: str
    identity_type: str  # "Anonymous", "Basic", "Bearer", "Kerberos"
    is_authenticated: bool
    # Kerberos with a forwarded TGT: PI Web API can then reach PI/AF as the user (double hop).
    delegated: bool = False

    def userinfo(self) -> dict[str, Any]:
        """The /system/userinfo body for this identity."""
        return {
            "IdentityType": self.identity_type,
            "Name": self.name,
            "IsAuthenticated": self.is_authenticated,
            "SID": "S-1-5-7" if not self.is_authenticated else "",
            "ImpersonationLevel": (
                "Delegation" if self.delegated else "Impersonation" if self.is_authenticated else "Anonymous"
            ),
        }


ANONYMOUS = Identity(name="NT AUTHORITY\\ANONYMOUS LOGON", identity_type="Anonymous", is_authenticated=False)


def identity_of(scope: Scope) -> Identity:
    """The identity AuthMiddleware attached to this request (anonymous when auth is off)."""
    identity = scope.get(SCOPE_KEY)
    return identity if isinstance(identity, Identity) else ANONYMOUS


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    scope: str
    expires_us: int


class TokenStore:
    """Opaque bearer tokens issued by the token endpoint; they expire by the emulator clock, not the wall clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, client_id: str, scope: str, now_us: int, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            # Forget long-expired tokens so a client refreshing for days does not grow the store without bound.
            self._tokens = {k: v for k, v in self._tokens.items() if v.expires_us > now_us - 86_400_000_000}
            self._tokens[token] = IssuedToken(client_id, scope, now_us + ttl_s * 1_000_000)
        return token

    def check(self, token: str, now_us: int) -> tuple[IssuedToken | None, str]:
        """(token, "") when valid, else (None, reason) with reason "unknown" or "expired"."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return None, "unknown"
        if now_us >= issued.expires_us:
            return None, "expired"
        return issued, ""


def tokens_for(state: Any) -> TokenStore:
    """The state's token store, shared by the middleware and the token endpoint."""
    store = getattr(state, "token_store", None)
    if store is None:
        store = TokenStore()
        state.token_store = store
    return store


def _basic_credentials(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class AuthMiddleware:
    """Guards /piwebapi (HTTP and WebSocket upgrades) with the configured scheme(s).

    Outside /piwebapi (health, metrics, admin, the token endpoint) and the OIDC discovery document stay open:
    they are the emulator's own plumbing, not PI Web API resources.
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state
        mode = state.config.auth
        keytab = state.config.keytab
        if mode not in SCHEMES_BY_MODE:
            raise ValueError(f"mock_pi --auth must be one of {', '.join(SCHEMES_BY_MODE)}, got {mode!r}")
        if mode == "negotiate" and not keytab:
            raise ValueError(
                "mock_pi --auth negotiate is not supported without a keytab: pass --keytab PATH holding the keys of "
                "HTTP/<host>@REALM (kadmin ktadd), or use --auth basic, bearer or any."
            )
        self.schemes: tuple[str, ...] = SCHEMES_BY_MODE[mode]
        self.acceptor: NegotiateAcceptor | None = None
        if keytab:
            from mock_pi.negotiate import NegotiateAcceptor

            self.acceptor = NegotiateAcceptor(keytab)
            if "Negotiate" not in self.schemes:
                self.schemes = ("Negotiate", *self.schemes)
        self.tokens = tokens_for(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = (
            scope["type"] in ("http", "websocket")
            and (path == "/piwebapi" or path.startswith("/piwebapi/"))
            and path != DISCOVERY_PATH
        )
        if not guarded or not self.schemes:
            if scope["type"] in ("http", "websocket"):
                scope[SCOPE_KEY] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization") or ""
        if header[:10].lower() == "negotiate " and self.acceptor is not None:
            await self._negotiate(scope, receive, send, header[10:])
            return
        identity, bearer_error = self._authenticate(header)
        if identity is None:
            await self._deny(scope, send, bearer_error)
            return
        scope[SCOPE_KEY] = identity
        await self.app(scope, receive, send)

    async def _negotiate(self, scope: Scope, receive: Receive, send: Send, credentials: str) -> None:
        """Verify a Kerberos token and return the server's reply token (mutual authentication) with the response."""
        from mock_pi.negotiate import NegotiateError

        assert self.acceptor is not None
        try:
            token = base64.b64decode(credentials.strip(), validate=True)
            # GSSAPI calls block (keytab and replay-cache I/O): keep them off the event loop.
            accepted = await to_thread.run_sync(self.acceptor.accept, token)
        except (binascii.Error, NegotiateError) as exc:
            reason = "the Negotiate token is not base64" if isinstance(exc, binascii.Error) else str(exc)
            await self._deny(scope, send, "", kerberos_error=reason)
            return
        scope[SCOPE_KEY] = Identity(
            name=accepted.principal,
            identity_type=accepted.mechanism,
            is_authenticated=True,
            delegated=accepted.delegated,
        )
        reply = accepted.reply_token
        if reply is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        challenge = (b"www-authenticate", b"Negotiate " + base64.b64encode(reply))

        async def send_with_reply(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), challenge]}
            await send(message)

        await self.app(scope, receive, send_with_reply)

    def _authenticate(self, header: str) -> tuple[Identity | None, str]:
        """The identity, or None plus a Bearer error description when a presented token was refused."""
        if not header:
            return None, ""
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        config = self.state.config
        if scheme == "basic" and "Basic" in self.schemes:
            pair = _basic_credentials(credentials)
            if pair and _equal(pair[0], config.username) and _equal(pair[1], config.password):
                return Identity(name=pair[0], identity_type="Basic", is_authenticated=True), ""
            return None, ""
        if scheme == "bearer" and "Bearer" in self.schemes:
            issued, reason = self.tokens.check(credentials.strip(), self.state.clock.now_us())
            if issued is None:
                return (
                    None,
                    "The access token expired" if reason == "expired" else "The access token is not valid",
                )
            return Identity(name=issued.client_id, identity_type="Bearer", is_authenticated=True), ""
        return None, ""

    def _challenges(self, bearer_error: str) -> list[tuple[bytes, bytes]]:
        values = []
        for scheme in self.schemes:
            if scheme == "Negotiate":
                values.append("Negotiate")
            elif scheme == "Basic":
                values.append(f'Basic realm="{REALM}"')
            elif bearer_error:
                values.append(
                    f'Bearer realm="{REALM}", error="invalid_token", error_description="{bearer_error}"'
                )
            else:
                values.append(f'Bearer realm="{REALM}"')
        return [(b"www-authenticate", v.encode()) for v in values]

    async def _deny(self, scope: Scope, send: Send, bearer_error: str, *, kerberos_error: str = "") -> None:
        reason = f"{DENIED} {bearer_error}." if bearer_error else DENIED
        if kerberos_error:
            # Real IIS says nothing; naming the GSSAPI reason (replay, wrong key, skew) saves a Kerberos trace.
            reason = f"{DENIED} Kerberos: {kerberos_error}."
        body = orjson.dumps({"Errors": [reason]})
        headers = [
            (b"content-type", JSON_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            *self._challenges(bearer_error),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            # Refuse the upgrade with a real 401 so clients can tell "bad credentials" from "bad WebId".
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


def _oauth_error(status: int, error: str, description: str, *, basic_challenge: bool = False) -> Response:
    # RFC 6749 §5.2 error body; a client that authenticated with HTTP Basic gets a Basic challenge back.
    headers = {"Cache-Control": "no-store"}
    if basic_challenge:
        headers["WWW-Authenticate"] = 'Basic realm="identitymanager"'
    return json_response({"error": error, "error_description": description}, status=status, headers=headers)


async def token_endpoint(request: Request) -> Response:
    """OAuth 2.0 client-credentials grant, client authenticated in the form body or with HTTP Basic."""
    state = request.app.state.emulator
    config = state.config
    if "Bearer" not in SCHEMES_BY_MODE.get(config.auth, ()):
        return _oauth_error(
            400, "unauthorized_client", f"bearer authentication is not enabled (--auth {config.auth})"
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            400, "invalid_request", "the token request must be application/x-www-form-urlencoded"
        )
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization", "")
    used_basic = header.lower().startswith("basic ")
    if used_basic:
        pair = _basic_credentials(header[6:])
        if pair is None:
            return _oauth_error(
                401, "invalid_client", "malformed HTTP Basic client credentials", basic_challenge=True
            )
        # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
        client_id, client_secret = unquote(pair[0].replace("+", " ")), unquote(pair[1].replace("+", " "))
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(
            400,
            "unsupported_grant_type",
            f"grant_type {form.get('grant_type')!r} is not supported; use client_credentials",
        )
    if not client_id or client_secret is None:
        return _oauth_error(
            401, "invalid_client", "client_id and client_secret are required", basic_challenge=used_basic
        )
    if not (_equal(client_id, config.oidc_client_id) and _equal(client_secret, config.oidc_client_secret)):
        return _oauth_error(
            401, "invalid_client", "unknown client or wrong client secret", basic_challenge=used_basic
        )
    scope = form.get("scope", "")
    token = tokens_for(state).issue(client_id, scope, state.clock.now_us(), config.token_ttl_s)
    body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": config.token_ttl_s}
    if scope:
        body["scope"] = scope
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def openid_configuration(request: Request) -> Response:
    """OIDC discovery as PI Web API relays it; only the token endpoint and client-credentials grant are real."""
    root = f"{request.url.scheme}://{request.url.netloc}"
    issuer = f"{root}/identitymanager"
    return json_response(
        {
            "issuer": issuer,
            "token_endpoint": f"{root}{TOKEN_PATH}",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["token"],
            "scopes_supported": ["osisoftpiwebapi"],
        }
    )


ROUTES: list[BaseRoute] = [
    Route(TOKEN_PATH, token_endpoint, methods=["POST"]),
    Route(DISCOVERY_PATH, openid_configuration, methods=["GET"]),
]
