"""Server side of HTTP Negotiate (SPNEGO, RFC 4559) with Kerberos: accept a client token using a service keytab.

Owns `NegotiateAcceptor`; gssapi (MIT krb5) is imported only when one is built, so the emulator runs without it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

# SPNEGO (RFC 4178): the mechanism HTTP "Negotiate" tokens are wrapped in; Kerberos is negotiated inside it.
SPNEGO_OID = "1.3.6.1.5.5.2"
KRB5_OID = "1.2.840.113554.1.2.2"


class NegotiateError(Exception):
    """A Negotiate token was refused; the message says why (bad token, wrong key, replay, multi-leg mechanism)."""


@dataclass(frozen=True)
class Accepted:
    """An authenticated Negotiate request: the client principal and the reply token for mutual authentication."""

    principal: str
    reply_token: bytes | None
    mechanism: str  # "Kerberos" (or "NTLM" if the GSSAPI library negotiated it, which this emulator refuses)
    delegated: bool  # the client forwarded its TGT (PI Web API then reports ImpersonationLevel "Delegation")


class NegotiateAcceptor:
    """Accepts Negotiate tokens for any service principal in `keytab` (normally HTTP/<host>@REALM).

    Each HTTP request carries a complete Kerberos AP-REQ, so one `accept` call per request finishes the exchange;
    the reply token (AP-REP) goes back in `WWW-Authenticate: Negotiate <token>` so the client can verify the server.
    """

    def __init__(self, keytab: str) -> None:
        try:
            import gssapi
        except ImportError:
            raise ValueError(
                "--auth negotiate needs the Python package gssapi (MIT Kerberos): "
                "pip install 'osipi-dagster[kerberos]' (Debian: apt-get install libkrb5-dev first)"
            ) from None
        path = keytab.removeprefix("FILE:")
        if not os.path.isfile(path):
            raise ValueError(f"--keytab {keytab!r}: no such file; export one with kadmin ktadd HTTP/<host>")
        if not os.access(path, os.R_OK):
            raise ValueError(f"--keytab {keytab!r} is not readable by this process")
        self._gssapi: Any = gssapi
        self.keytab = f"FILE:{path}"
        self._spnego = gssapi.OID.from_int_seq(SPNEGO_OID)
        self._krb5 = gssapi.OID.from_int_seq(KRB5_OID)
        # Credentials are acquired once: a keytab without keys (or a corrupt one) fails at startup, not per request.
        self._creds = self._acquire()
        # MIT krb5 contexts are not shared across threads; the lock also serialises replay-cache writes.
        self._lock = threading.Lock()

    def _acquire(self) -> Any:
        gssapi = self._gssapi
        try:
            # name=None: accept for any principal in the keytab, as IIS does for every SPN registered to its account.
            return gssapi.Credentials(
                usage="accept", mechs=[self._spnego, self._krb5], store={"keytab": self.keytab}
            )
        except gssapi.exceptions.GSSError as exc:
            raise ValueError(
                f"--keytab {self.keytab}: cannot acquire Kerberos acceptor credentials ({_gss_text(exc)}); "
                "it must hold the keys of HTTP/<host>@REALM"
            ) from None

    def accept(self, token: bytes) -> Accepted:
        """Verify one client token; raise NegotiateError with the GSSAPI reason when it does not authenticate."""
        gssapi = self._gssapi
        with self._lock:
            ctx = gssapi.SecurityContext(creds=self._creds, usage="accept")
            try:
                reply = ctx.step(token)
                # When SPNEGO fails with a reject token for the peer, python-gssapi defers the GSSError to the
                # next attribute access, so reading the context's state belongs inside this try as well.
                complete = bool(ctx.complete)
                mech = ctx.mech.dotted_form if complete else ""
                principal = str(ctx.initiator_name) if complete else ""
                delegated = complete and ctx.delegated_creds is not None
            except gssapi.exceptions.GSSError as exc:
                raise NegotiateError(_gss_text(exc)) from None
        if not complete:
            # NTLM needs a second leg on the same connection; PI Web API clients here must use Kerberos.
            raise NegotiateError("the client did not complete in one leg (NTLM?); only Kerberos is accepted")
        if mech != KRB5_OID:
            raise NegotiateError(f"mechanism {mech} was negotiated; only Kerberos ({KRB5_OID}) is accepted")
        return Accepted(
            principal=principal, reply_token=reply or None, mechanism="Kerberos", delegated=delegated
        )


def _gss_text(exc: Exception) -> str:
    # GSSError.gen_message() joins the major and minor (krb5) status texts, e.g. "Request is a replay".
    gen = getattr(exc, "gen_message", None)
    text = gen() if callable(gen) else str(exc)
    return " ".join(str(text).split())
