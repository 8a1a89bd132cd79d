"""Fixtures for the Kerberos tests: one throwaway MIT realm on 127.0.0.1 and an emulator guarding /piwebapi with it.

Both live for this test package only; the KRB5_* variables they export are restored when the package is done.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from osipi_dagster_tests.emulator import Emulator, start_emulator
from osipi_dagster_tests.kerberos.realm import Realm, missing_tools, start_realm

EMULATOR_ARGS = ("--seed", "42", "--tags", "50", "--clock", "frozen:2024-05-01T12:00:00Z")


def kerberos_unavailable() -> str | None:
    """Why these tests cannot run here, or None."""
    missing = missing_tools()
    if missing:
        return (
            f"MIT Kerberos tools missing ({', '.join(missing)}): "
            "apt-get install krb5-kdc krb5-admin-server krb5-user"
        )
    for module in ("gssapi", "spnego"):
        if importlib.util.find_spec(module) is None:
            return (
                f"Python package {module} missing: pip install 'osipi-dagster[kerberos]' (needs libkrb5-dev)"
            )
    return None


@pytest.fixture(scope="package")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    """A running KDC for OSIPI.TEST with HTTP/localhost and pi-reader, this process pointed at it, and a TGT."""
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5CCNAME", "KRB5RCACHEDIR")}
    with start_realm(tmp_path_factory.mktemp("krb5")) as kdc:
        # gssapi in this process and every emulator started from it read these; nothing touches /etc/krb5.conf.
        os.environ.update(kdc.env())
        try:
            kdc.kinit()
            yield kdc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="package")
def negotiate_emulator(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """mock_pi with --auth negotiate and the HTTP/localhost keytab (it inherits the realm's KRB5_* environment)."""
    args = (*EMULATOR_ARGS, "--auth", "negotiate", "--keytab", str(realm.service_keytab))
    with start_emulator(*args, log_dir=tmp_path_factory.mktemp("negotiate")) as emu:
        yield emu


def service_url(emu: Emulator) -> str:
    """The emulator's /piwebapi as the client must name it: by host name, so the SPN is HTTP/localhost."""
    return f"http://localhost:{emu.port}/piwebapi"
