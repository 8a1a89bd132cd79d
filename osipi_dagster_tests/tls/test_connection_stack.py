"""One connection stack: a client's REST calls and its WebSocket channels use one TLS context, so an untrusted
certificate fails both the same way and a CA bundle makes both work (real https:// and wss:// emulator)."""

from __future__ import annotations

import ssl

import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, TLSVerificationError
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.piwebapi.connection import ssl_context
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.tls.conftest import Pki
from osipi_dagster_tests.tls.test_tls import ADVICE, DENSE, UNTRUSTED


def test_untrusted_certificate_fails_rest_and_channel_alike(tls_emulator: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(tls_emulator.api, max_retries=3)) as pi:
        assert pi.channel([DENSE[0].web_id]).ssl_context() is pi.session.connection.ssl
        # Without back-fill (pi.channel would first ask the server's clock over REST): the wss:// upgrade itself.
        stream = ChannelStream(pi.session.connection, [DENSE[0].web_id], max_reconnects=3)
        with pytest.raises(TLSVerificationError) as rest:
            pi.data_servers()
        with pytest.raises(TLSVerificationError) as channel:
            next(iter(stream))
        assert pi.stats.retries == 0 and stream.reconnects == 0
    where = f"at {tls_emulator.api} ({UNTRUSTED}): {ADVICE}"
    assert str(rest.value) == f"TLS certificate verification failed for GET /dataservers {where}"
    assert str(channel.value) == f"TLS certificate verification failed for GET /streamsets/channel {where}"


def test_ca_bundle_makes_rest_and_channel_work(tls_emulator: Emulator, pki: Pki) -> None:
    with PIWebAPIClient(ClientConfig(tls_emulator.api, ca_bundle=str(pki.ca))) as pi:
        assert [s.name for s in pi.data_servers()] == ["PISRV01", "PISRV02"]
        stream = pi.channel([DENSE[0].web_id], heartbeat_rate=1, silence_timeout_s=5)
        with stream.open() as ws:
            # The first message (data or heartbeat) proves the wss:// upgrade was trusted and accepted.
            assert isinstance(ws.recv(timeout=10), str)
        assert pi.stats.retries == 0


def test_one_builder_for_every_trust_setting(tmp_path, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    api = "https://127.0.0.1:1/piwebapi"
    default = ssl_context(ClientConfig(api))
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    bundle = ssl_context(ClientConfig(api, ca_bundle=str(pki.ca)))
    assert bundle.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in bundle.get_ca_certs()] == [
        ((("commonName", "osipi-dagster throwaway test CA"),),)
    ]
    off = ssl_context(ClientConfig(api, verify_tls=False))
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    with pytest.raises(FileNotFoundError):
        ssl_context(ClientConfig(api, ca_bundle=str(tmp_path / "missing.pem")))
