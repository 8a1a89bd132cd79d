"""Authentication as httpx.Auth flows: anonymous, Basic, Bearer (static or OIDC client credentials), Kerberos/Negotiate.

One interface for every scheme; `build_auth(AuthConfig, ...)` picks the flow. Anonymous is httpx's own no-op `Auth`,
Basic is httpx's `BasicAuth`. OIDC client credentials stay hand-written: docs/architecture.md ("Connection stack")
says why no maintained library fitted. Secrets never appear in reprs or errors.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from osipi_dagster.lib.piwebapi.config import AuthConfig
from osipi_dagster.lib.piwebapi.errors import AuthenticationError


class BasicAuth(httpx.BasicAuth):
    """httpx's Basic auth, sent pre-emptively (PI answers 401 otherwise, doubling the round trips); a DOMAIN\\user
    name is sent as it is. Only the repr is ours: it names the user and hides the password."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self.username = username

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class BearerAuth(httpx.Auth):
    """A static bearer token (e.g. issued by AVEVA Identity Manager out of band)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class OIDCClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from an OIDC token endpoint (client_credentials grant).

    The token is refreshed `refresh_margin_s` before it expires. A 401 on a request triggers exactly one forced
    refresh and one retry (the server's clock, or a revoked token, may disagree with our expiry estimate).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        refresh_margin_s: float = 60.0,
        token_client: Callable[[], httpx.Client] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.refresh_margin_s = refresh_margin_s
        self._token_client = token_client or (lambda: httpx.Client(timeout=30.0))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"OIDCClientCredentialsAuth(token_url={self.token_url!r}, client_id={self.client_id!r}, secret=***)"

    def _fetch(self) -> None:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            data["scope"] = self.scope
        try:
            with self._token_client() as client:
                response = client.post(self.token_url, data=data, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise AuthenticationError(
                f"OIDC token request to {self.token_url} failed ({type(exc).__name__})",
                method="POST",
                path=self.token_url,
                advice="check PI_OIDC_TOKEN_URL and that the identity provider is reachable",
            ) from None
        if response.status_code != 200:
            raise AuthenticationError(
                f"OIDC token endpoint {self.token_url} returned {response.status_code}",
                method="POST",
                path=self.token_url,
                status=response.status_code,
                advice="check PI_OIDC_CLIENT_ID/PI_OIDC_CLIENT_SECRET and the client's grants",
            )
        try:
            body: dict[str, Any] = response.json()
            token = str(body["access_token"])
            ttl = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"OIDC token endpoint {self.token_url} answered without access_token",
                method="POST",
                path=self.token_url,
                status=response.status_code,
                advice="check that PI_OIDC_TOKEN_URL is the token endpoint (…/connect/token)",
            ) from None
        self._token = token
        self._expires_at = self._monotonic() + ttl
        self.token_fetches += 1

    def token(self, *, force: bool = False, stale: str | None = None) -> str:
        """A valid token; `force` refreshes unless another thread already replaced the `stale` token."""
        with self._lock:
            expired = self._monotonic() >= self._expires_at - self.refresh_margin_s
            if self._token is None or expired or (force and self._token == stale):
                self._fetch()
            assert self._token is not None
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(force=True, stale=token)}"
            yield request


class KerberosAuth(httpx.Auth):
    """Kerberos/Negotiate (SPNEGO) via pyspnego, imported lazily; uses the ticket cache unless credentials are given."""

    def __init__(
        self, *, service: str = "HTTP", username: str | None = None, password: str | None = None
    ) -> None:
        self.service = service
        self.username = username
        self._password = password

    def __repr__(self) -> str:
        return f"KerberosAuth(service={self.service!r}, username={self.username!r})"

    def _context(self, host: str) -> Any:
        try:
            import spnego
        except ImportError:
            raise AuthenticationError(
                "Kerberos auth needs pyspnego",
                advice="install it with: pip install 'osipi-dagster[kerberos]' (pyspnego with gssapi/krb5)",
            ) from None
        try:
            return spnego.client(
                self.username, self._password, hostname=host, service=self.service, protocol="negotiate"
            )
        except Exception as exc:
            raise AuthenticationError(
                f"cannot create a Kerberos context for {self.service}@{host} ({type(exc).__name__})",
                advice="install the kerberos extra (pip install 'osipi-dagster[kerberos]', needs libkrb5/gssapi) "
                "and run kinit, or configure basic/bearer auth",
            ) from None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ctx = self._context(request.url.host)
        try:
            out = ctx.step()
        except Exception as exc:
            # GSSAPI's own text says which step failed ("No Kerberos credentials available (default cache: ...)",
            # "Server not found in Kerberos database"), which the exception type alone does not.
            reason = " ".join(str(exc).split())[:400]
            raise AuthenticationError(
                f"Kerberos could not get a ticket for {self.service}@{request.url.host} "
                f"({type(exc).__name__}: {reason})",
                method=request.method,
                path=request.url.path,
                advice="run kinit (or check the keytab) and that the SPN HTTP/<host> exists; "
                "gssapi is needed: pip install 'osipi-dagster[kerberos]'",
            ) from None
        request.headers["Authorization"] = "Negotiate " + base64.b64encode(out).decode("ascii")
        response = yield request
        # Mutual authentication: feed the server's final token back so the context can verify it.
        header = response.headers.get("WWW-Authenticate", "")
        if header.startswith("Negotiate ") and not ctx.complete:
            try:
                ctx.step(base64.b64decode(header.split(" ", 1)[1]))
            except Exception:
                raise AuthenticationError(
                    f"Kerberos mutual authentication with {request.url.host} failed",
                    method=request.method,
                    path=request.url.path,
                    status=response.status_code,
                    advice="the server's Kerberos reply did not verify; check the SPN and clock skew",
                ) from None


def build_auth(config: AuthConfig, *, token_client: Callable[[], httpx.Client] | None = None) -> httpx.Auth:
    """The httpx.Auth flow for `config`; `token_client` builds the HTTP client used for OIDC token requests."""
    if config.method == "anonymous":
        return httpx.Auth()  # httpx's base class sends the request unchanged
    if config.method == "basic":
        assert config.username is not None and config.password is not None
        return BasicAuth(config.username, config.password)
    if config.method == "bearer":
        if config.bearer_token:
            return BearerAuth(config.bearer_token)
        assert config.oidc_token_url and config.oidc_client_id and config.oidc_client_secret
        return OIDCClientCredentialsAuth(
            config.oidc_token_url,
            config.oidc_client_id,
            config.oidc_client_secret,
            scope=config.oidc_scope,
            refresh_margin_s=config.refresh_margin_s,
            token_client=token_client,
        )
    return KerberosAuth(service=config.kerberos_service, username=config.username, password=config.password)
