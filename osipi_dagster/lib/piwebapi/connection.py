"""One connection stack per PI Web API, shared by REST (httpx) and WebSocket channels (websockets).

`Connection.build(config)` makes the TLS context (one builder for both transports, so REST and channels trust the
same certificates; for an http:// server only when first needed), the auth flow (one object: an OIDC token cache is
shared, and its token requests use the same TLS context) and the retry policy (lib/retry.py) with the client's numbers.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import httpx

from osipi_dagster.lib.piwebapi.auth import build_auth
from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.retry import RetryPolicy


def ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """The TLS context of every connection to the server: httpx's and websockets' alike.

    verify_tls=False: no verification (an explicit opt-out); ca_bundle: the CAs of that PEM file; otherwise httpx's
    default trust (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR when set).
    """
    if not config.verify_tls:
        return httpx.create_ssl_context(verify=False)
    if config.ca_bundle:
        return ssl.create_default_context(cafile=config.ca_bundle)
    return httpx.create_ssl_context()


def retry_policy(config: ClientConfig, *, sleep: Callable[[float], object] = time.sleep) -> RetryPolicy:
    """The client's policy for one request: max_retries retries within retry_budget_s, the config's backoff."""
    return RetryPolicy(
        max_retries=config.max_retries,
        deadline_s=config.retry_budget_s,
        backoff_base_s=config.backoff_base_s,
        backoff_max_s=config.backoff_max_s,
        sleep=sleep,
    )


@dataclass(frozen=True)
class Connection:
    """What every request to one PI Web API shares: its config, TLS context, auth flow and retry policy."""

    config: ClientConfig
    auth: httpx.Auth
    retry: RetryPolicy

    @cached_property
    def ssl(self) -> ssl.SSLContext:
        """The TLS context, built on first use (loading the CAs costs ~20 ms of CPU a client)."""
        return ssl_context(self.config)

    @property
    def is_tls(self) -> bool:
        return self.config.base_url.startswith("https://")

    @classmethod
    def build(cls, config: ClientConfig, *, sleep: Callable[[float], object] = time.sleep) -> Connection:
        timeout = timeout_of(config)
        # The OIDC token endpoint may be https:// even when the server is not: its client asks for the context
        # (the lambda runs after `connection` below is bound).
        auth = build_auth(
            config.auth, token_client=lambda: httpx.Client(verify=connection.ssl, timeout=timeout)
        )
        connection = cls(config, auth, retry_policy(config, sleep=sleep))
        if connection.is_tls:
            connection.ssl  # noqa: B018 - an https:// server's context now: a bad CA bundle fails at construction
        return connection


def timeout_of(config: ClientConfig) -> httpx.Timeout:
    """The request timeouts: timeout_s for reads and writes, connect_timeout_s to connect."""
    return httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
