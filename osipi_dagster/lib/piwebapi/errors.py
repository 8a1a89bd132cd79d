"""The client's exceptions: every one names the request (method, path, web id) and the HTTP status, and says what to do.

`PIWebAPIError` is the base class callers catch; subclasses let retry logic and callers tell the cases apart.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

# What an operator should do about a given status; the first line of defence for "why did my run fail?".
_ADVICE: dict[int, str] = {
    400: "the request was rejected as invalid; check the time range, names and parameters",
    401: "check PI_USERNAME/PI_PASSWORD (basic), the bearer token or OIDC client credentials, or the Kerberos ticket",
    403: "the account lacks permission on this object; ask the PI administrator for read access",
    404: "the object does not exist (a deleted tag or a stale web id); re-run discovery",
    409: (
        "the object does not support this call in its current state (e.g. a stream read on an AF attribute without "
        "a data reference: read it with attributes/{webId}/value instead); see the server's message"
    ),
    413: "the request body is over the server's MaxRequestContentLength; lower the batch size",
    429: "the server is rate limiting this client; lower max_concurrency",
    500: "PI Web API failed internally; check the PI Web API and Data Archive/AF logs",
    502: "a proxy could not reach PI Web API; check the PI Web API service",
    503: "PI Web API or its PI/AF back end is unavailable; check the services and retry later",
    504: "PI Web API timed out talking to PI/AF; narrow the request or check the back end",
}


class PIWebAPIError(Exception):
    """A PI Web API call failed. `status` is the HTTP status (None for connection-level failures)."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        web_id: str | None = None,
        server_errors: Sequence[str] = (),
        advice: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.web_id = web_id
        self.server_errors = list(server_errors)
        self.advice = advice if advice is not None else _ADVICE.get(status or 0, "")
        parts = [message]
        if self.server_errors:
            parts.append("server said: " + "; ".join(self.server_errors))
        if self.advice:
            parts.append(self.advice)
        super().__init__(": ".join(parts))

    def reworded(self, message: str, **changes: object) -> PIWebAPIError:
        """The same error (same class, request, status and server messages) with a new message or fields."""
        fields: dict[str, object] = {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "web_id": self.web_id,
            "server_errors": self.server_errors,
            "advice": self.advice,
        }
        fields.update(changes)
        return type(self)(message, **fields)  # type: ignore[arg-type]

    @classmethod
    def for_status(
        cls,
        status: int,
        method: str,
        path: str,
        *,
        web_id: str | None = None,
        server_errors: Sequence[str] = (),
    ) -> PIWebAPIError:
        where = f"{method} {path}" + (f" (web id {web_id})" if web_id else "")
        kind = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError}.get(status)
        if kind is None:
            kind = TooManyValuesError if _is_too_many(server_errors) else PIWebAPIError
        return kind(
            f"PI Web API returned {status} for {where}",
            method=method,
            path=path,
            status=status,
            web_id=web_id,
            server_errors=server_errors,
        )


class AuthenticationError(PIWebAPIError):
    """401/403, or credentials that could not be obtained (token endpoint, Kerberos)."""


class NotFoundError(PIWebAPIError):
    """404: unknown web id or path."""


class TooManyValuesError(PIWebAPIError):
    """400 '... is greater than the maximum allowed (N)': MaxReturnedItemsPerCall was exceeded."""

    @property
    def limit(self) -> int | None:
        return max_allowed(self.server_errors)


class CircuitOpenError(PIWebAPIError):
    """The server failed repeatedly; further calls fail fast until the breaker's cool-down ends."""


class ResponseError(PIWebAPIError):
    """A 2xx response whose body reports a failure (WebException) or cannot be read (truncated JSON)."""


TLS_ADVICE = "set PI_CA_BUNDLE to your CA's PEM file (or PI_VERIFY_TLS=false only for testing)"


class TLSVerificationError(PIWebAPIError):
    """The server's TLS certificate failed verification (untrusted CA, wrong host name, expired).

    Never retried: asking again cannot make the certificate trusted, and retries would only hide the cause.
    """

    @classmethod
    def of(
        cls, cause: ssl.SSLCertVerificationError, *, method: str, path: str, url: str
    ) -> TLSVerificationError:
        """The error for `method path` on the server at `url` (its base URL), giving OpenSSL's reason."""
        reason = cause.verify_message or cause.reason or str(cause)
        return cls(
            f"TLS certificate verification failed for {method} {path} at {url} ({reason})",
            method=method,
            path=path,
            advice=TLS_ADVICE,
        )


def _is_too_many(errors: Sequence[str]) -> bool:
    return any("greater than the maximum allowed" in e for e in errors)


def max_allowed(errors: Sequence[str]) -> int | None:
    """N from 'Parameter (maxCount) is greater than the maximum allowed (N)', if present."""
    import re

    for e in errors:
        m = re.search(r"greater than the maximum allowed \((\d+)\)", e)
        if m:
            return int(m.group(1))
    return None


def server_messages(body: object) -> list[str]:
    """The error texts of a PI error body: {"Errors": [...]}, {"Message": "..."}, a bare string, or WebException."""
    if isinstance(body, str):
        return [body] if body else []
    if not isinstance(body, dict):
        return []
    out: list[str] = []
    errors = body.get("Errors")
    if isinstance(errors, list):
        out.extend(str(e.get("Message", e)) if isinstance(e, dict) else str(e) for e in errors)
    if isinstance(body.get("Message"), str):
        out.append(body["Message"])
    web_exc = body.get("WebException")
    if isinstance(web_exc, dict):
        out.extend(server_messages(web_exc))
    return out
