"""Client configuration: `ClientConfig` (endpoint, TLS, timeouts, concurrency, retries) and `AuthConfig` (credentials).

Plain frozen dataclasses; secrets are excluded from repr() so they never reach logs or error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from osipi_dagster.lib.settings import Settings

AuthMethod = Literal["anonymous", "basic", "kerberos", "bearer"]
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)


@dataclass(frozen=True)
class AuthConfig:
    """How the client authenticates. `method` is one of anonymous | basic | bearer | kerberos.

    bearer: either a static `bearer_token`, or OIDC client credentials (`oidc_token_url`, `oidc_client_id`,
    `oidc_client_secret`, optional `oidc_scope`) refreshed shortly before expiry. kerberos: Negotiate via pyspnego,
    using the ticket cache (or `username`/`password` if given); `kerberos_service` is the SPN service ("HTTP").
    """

    method: AuthMethod = "anonymous"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    oidc_token_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_scope: str | None = None
    kerberos_service: str = "HTTP"
    # Refresh an OIDC token this many seconds before it expires, so no request goes out with a dying token.
    refresh_margin_s: float = 60.0

    def __post_init__(self) -> None:
        if self.method not in AUTH_METHODS:
            raise ValueError(f"AuthConfig.method={self.method!r} is not one of {', '.join(AUTH_METHODS)}.")
        if self.method == "basic" and not (self.username and self.password):
            raise ValueError("basic auth needs username and password (PI_USERNAME/PI_PASSWORD).")
        oidc = self.oidc_token_url and self.oidc_client_id and self.oidc_client_secret
        if self.method == "bearer" and not self.bearer_token and not oidc:
            raise ValueError(
                "bearer auth needs bearer_token, or oidc_token_url + oidc_client_id + oidc_client_secret "
                "(PI_BEARER_TOKEN or PI_OIDC_TOKEN_URL/PI_OIDC_CLIENT_ID/PI_OIDC_CLIENT_SECRET)."
            )


@dataclass(frozen=True)
class ClientConfig:
    """Everything `PIWebAPIClient` needs. `base_url` ends in /piwebapi (a trailing slash is ignored).

    max_concurrency bounds parallel HTTP calls; max_retries bounds attempts per call after the first;
    retry_budget_s bounds the total time one call may spend retrying; max_items_per_call is the server's
    MaxReturnedItemsPerCall (150,000 by default; learned from the server's 400 if lower).
    """

    base_url: str
    auth: AuthConfig = field(default_factory=AuthConfig)
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_concurrency: int = 8
    max_retries: int = 5
    retry_budget_s: float = 120.0
    backoff_base_s: float = 0.25
    backoff_max_s: float = 20.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    max_items_per_call: int = 150_000
    max_url_bytes: int = 8_000
    batch_size: int = 200
    user_agent: str = "osipi-dagster"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url={self.base_url!r} must be an http(s) URL ending in /piwebapi.")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1.")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more.")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ClientConfig:
        """The one derivation from the configuration contract (`osipi_dagster.lib.settings.Settings`)."""
        auth = AuthConfig(
            method=settings.auth_method,
            username=settings.username,
            password=settings.password,
            bearer_token=settings.bearer_token,
            oidc_token_url=settings.oidc_token_url,
            oidc_client_id=settings.oidc_client_id,
            oidc_client_secret=settings.oidc_client_secret,
            oidc_scope=settings.oidc_scope,
        )
        kwargs: dict[str, object] = {
            "base_url": settings.pi_web_api_url,
            "auth": auth,
            "verify_tls": settings.verify_tls,
            "ca_bundle": settings.ca_bundle,
            "timeout_s": settings.timeout_s,
            "max_concurrency": settings.max_concurrency,
            "max_retries": settings.max_retries,
        }
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]
