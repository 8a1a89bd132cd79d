"""A client of a plain-http server builds its TLS context only when an https:// URL is requested; that request is
verified exactly as an https:// client's would be (real http:// and https:// emulators)."""

from __future__ import annotations

import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, TLSVerificationError
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.tls.conftest import Pki


def test_http_client_builds_no_tls_context_for_http_requests(emulator: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        assert [s.name for s in pi.data_servers()] == ["PISRV01", "PISRV02"]
        assert "ssl" not in vars(pi.session.connection)


def test_https_client_builds_its_context_at_construction(tls_emulator: Emulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with PIWebAPIClient(ClientConfig(tls_emulator.api)) as pi:
        assert "ssl" in vars(pi.session.connection)
    with pytest.raises(FileNotFoundError):
        PIWebAPIClient(ClientConfig(tls_emulator.api, ca_bundle=str(tmp_path / "missing.pem")))


def test_https_link_from_an_http_client_is_verified(
    emulator: Emulator, tls_emulator: Emulator, pki: Pki
) -> None:
    link = f"{tls_emulator.api}/dataservers"
    with PIWebAPIClient(ClientConfig(emulator.api, max_retries=1)) as pi, pytest.raises(TLSVerificationError):
        pi.get(link)
    with PIWebAPIClient(ClientConfig(emulator.api, ca_bundle=str(pki.ca))) as pi:
        body = pi.get(link)
        assert [s["Name"] for s in body["Items"]] == ["PISRV01", "PISRV02"]
        assert "ssl" in vars(pi.session.connection)
