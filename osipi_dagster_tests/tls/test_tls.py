"""https:// and wss:// against a real TLS emulator: certificate checks of the PI client, its channels and the
streaming listener (refused at once without the CA, working with PI_CA_BUNDLE's CA or the explicit opt-out).

The CA and the server certificate are generated per test (conftest.py); values are checked against mock_pi's archive.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from mock_pi.config import EmulatorConfig
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, PIWebAPIError, TLSVerificationError
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.piwebapi.connection import Connection
from osipi_dagster.lib.settings import Settings
from osipi_dagster.lib.streaming.listener import ChannelListener
from osipi_dagster.lib.streaming.spool import SPOOL_SCHEMA, Spool
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import PROJECT_ROOT, Emulator
from osipi_dagster_tests.streaming.helpers import wait_for
from osipi_dagster_tests.tls.conftest import FROZEN, SEED, TAGS, Pki, make_pki

ADVICE = "set PI_CA_BUNDLE to your CA's PEM file (or PI_VERIFY_TLS=false only for testing)"
# OpenSSL's reason when the chain ends in a CA the client does not trust.
UNTRUSTED = "unable to get local issuer certificate"

# The archive as of an hour after FROZEN: the tests move the emulator's clock forward by minutes.
EXPECTED = Expected(SEED, TAGS, FROZEN + timedelta(hours=1))
# Dense numeric points (a value every few seconds to minutes): every channel window below carries values.
DENSE = [p for p in (EXPECTED.point(i) for i in range(TAGS)) if p.is_numeric and p.spacing_us <= 60_000_000][
    :4
]


def advance(emu: Emulator, ca: Path, interval: str) -> None:
    r = httpx.post(f"{emu.root}/admin/clock", json={"Advance": interval}, verify=ssl_ctx(ca), timeout=10)
    r.raise_for_status()


def ssl_ctx(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def expected_values(start_offset: timedelta, end_offset: timedelta) -> pl.DataFrame:
    """Archive values with FROZEN+start < ts <= FROZEN+end of the DENSE points (a channel window)."""
    frame = EXPECTED.recorded(DENSE, FROZEN + start_offset, FROZEN + end_offset, include_end=True)
    return frame.filter(pl.col("timestamp") > FROZEN + start_offset)


# -- the HTTP client ----------------------------------------------------------------------------------------------


def test_default_settings_refuse_the_untrusted_server_at_once(tls_emulator: Emulator) -> None:
    # Retries allowed: a retry would show in the counters and as a wait asked of the client's sleep.
    config = ClientConfig(tls_emulator.api, backoff_base_s=2.0, max_retries=5)
    waits: list[float] = []
    with PIWebAPIClient(config, sleep=waits.append) as pi:
        with pytest.raises(TLSVerificationError) as err:
            pi.data_servers()
        # Still the certificate on the next call: the failure neither retries nor opens the circuit breaker.
        with pytest.raises(TLSVerificationError):
            pi.data_servers()
        assert pi.stats.http_calls == 2
        assert pi.stats.retries == 0
    assert waits == []
    assert isinstance(err.value, PIWebAPIError)
    assert err.value.status is None and err.value.method == "GET" and err.value.path == "/dataservers"
    assert str(err.value) == (
        f"TLS certificate verification failed for GET /dataservers at {tls_emulator.api} ({UNTRUSTED}): {ADVICE}"
    )


def test_ca_bundle_reads_data_servers_points_and_recorded_values(tls_emulator: Emulator, pki: Pki) -> None:
    with PIWebAPIClient(ClientConfig(tls_emulator.api, ca_bundle=str(pki.ca))) as pi:
        servers = pi.data_servers()
        assert [s.name for s in servers] == ["PISRV01", "PISRV02"]
        # Small pages: the client follows the server's paging through https:// links.
        points = pl.concat(list(pi.iter_points(servers[0], page_size=7)))
        web_ids = [DENSE[0].web_id, DENSE[1].web_id]
        got = pi.recorded(web_ids, FROZEN - timedelta(hours=6), FROZEN)
        assert pi.stats.retries == 0
    want_points = [EXPECTED.point(i).web_id for i in range(0, TAGS, 2)]  # point i is on server i % 2
    assert sorted(points["web_id"].to_list()) == sorted(want_points)
    want = EXPECTED.recorded(DENSE[:2], FROZEN - timedelta(hours=6), FROZEN, include_end=False)
    assert want.height > 100
    assert_same(got, want)


def test_links_the_emulator_builds_are_https(tls_emulator: Emulator, pki: Pki) -> None:
    with httpx.Client(verify=ssl_ctx(pki.ca), timeout=10) as http:
        servers = http.get(f"{tls_emulator.api}/dataservers").json()["Items"]
        page = http.get(servers[0]["Links"]["Points"], params={"maxCount": 5}).json()
    links = [link for s in servers for link in s["Links"].values()] + list(page["Links"].values())
    assert set(page["Links"]) == {"First", "Next", "Last"}
    assert links and all(link.startswith(f"{tls_emulator.api}/") for link in links), links


def test_verify_tls_false_is_an_explicit_opt_out(tls_emulator: Emulator, pki: Pki) -> None:
    # Verification is the default everywhere: the config, the environment contract and the channel's context.
    default = ClientConfig(tls_emulator.api)
    assert default.verify_tls is True and default.ca_bundle is None
    assert Settings.from_env({"PI_WEB_API_URL": tls_emulator.api}).verify_tls is True
    assert (
        Settings.from_env({"PI_WEB_API_URL": tls_emulator.api, "PI_VERIFY_TLS": "false"}).verify_tls is False
    )
    strict = ChannelStream(default, [DENSE[0].web_id]).ssl_context()
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname

    insecure = ClientConfig(tls_emulator.api, verify_tls=False)
    relaxed = ChannelStream(insecure, [DENSE[0].web_id]).ssl_context()
    assert relaxed is not None and relaxed.verify_mode == ssl.CERT_NONE
    with PIWebAPIClient(insecure) as pi:
        assert [s.name for s in pi.data_servers()] == ["PISRV01", "PISRV02"]


# -- channels -----------------------------------------------------------------------------------------------------


def test_wss_channel_delivers_values_with_the_ca_bundle(tls_emulator: Emulator, pki: Pki) -> None:
    config = ClientConfig(tls_emulator.api, ca_bundle=str(pki.ca))
    stream = ChannelStream(
        config, [p.web_id for p in DENSE], heartbeat_rate=1, silence_timeout_s=5, max_reconnects=0
    )
    context = stream.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert stream.url(False).startswith(f"wss://127.0.0.1:{tls_emulator.port}/piwebapi/streamsets/channel?")

    async def first_frame() -> pl.DataFrame:
        frames = stream.__aiter__()
        pending = asyncio.ensure_future(anext(frames))
        try:
            deadline = time.monotonic() + 10
            while not stream._connected_once:
                assert time.monotonic() < deadline, "the wss channel did not open"
                await asyncio.sleep(0.01)  # polling a bounded condition, not synchronisation by time
            await asyncio.to_thread(advance, tls_emulator, pki.ca, "10m")
            return await asyncio.wait_for(pending, 10)
        finally:
            pending.cancel()
            await frames.aclose()

    frame = asyncio.run(first_frame())
    want = expected_values(timedelta(0), timedelta(minutes=10))
    assert want.height > 20
    assert_same(frame, want)
    assert stream.reconnects == 0


def test_channel_without_the_ca_fails_at_once(tls_emulator: Emulator) -> None:
    waits: list[float] = []
    connection = Connection.build(ClientConfig(tls_emulator.api, backoff_base_s=2.0), sleep=waits.append)
    stream = ChannelStream(connection, [DENSE[0].web_id], max_reconnects=3)
    with pytest.raises(TLSVerificationError) as err:
        next(iter(stream))
    assert stream.reconnects == 0 and waits == []  # no reconnect, and no wait before one
    assert str(err.value) == (
        f"TLS certificate verification failed for GET /streamsets/channel at {tls_emulator.api} ({UNTRUSTED}): "
        f"{ADVICE}"
    )


# -- the streaming listener ---------------------------------------------------------------------------------------


def _tags() -> pl.DataFrame:
    return pl.DataFrame({"web_id": [p.web_id for p in DENSE], "tag": [p.name for p in DENSE]})


def test_listener_spools_wss_channel_values_with_the_ca_bundle(
    tls_emulator: Emulator, pki: Pki, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool", max_segment_age_s=0.2)
    with PIWebAPIClient(ClientConfig(tls_emulator.api, ca_bundle=str(pki.ca))) as pi:
        listener = ChannelListener(pi, spool, _tags(), heartbeat_rate=1, silence_timeout_s=5)
        listener.start()
        try:
            wait_for(lambda: listener.stats.connects == 1, 10, "the listener's wss channel to open")
            advance(tls_emulator, pki.ca, "5m")
            want = expected_values(timedelta(0), timedelta(minutes=5))
            wait_for(lambda: listener.stats.values >= want.height, 10, "the channel's values in the spool")
        finally:
            listener.stop()
            spool.close()
    assert listener.error is None
    assert listener.stats.reconnects == 0
    rows = pl.concat([spool.read(s.name) for s in spool.ready()])
    channel = rows.filter(pl.col("origin") == "channel")
    assert channel.height == want.height
    assert_same(channel.select(want.columns), want)


def test_listener_without_the_ca_stops_with_the_tls_error(tls_emulator: Emulator, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_segment_age_s=0.2)
    # Already covered: the listener opens the wss channel before any HTTP call, so the upgrade's own check fails.
    spool.append(pl.DataFrame(schema=SPOOL_SCHEMA), covered=([p.web_id for p in DENSE], FROZEN))
    stop = threading.Event()
    give_up = threading.Timer(10, stop.set)  # bounds the test if the error were retried forever
    give_up.start()
    try:
        with PIWebAPIClient(ClientConfig(tls_emulator.api)) as pi:
            listener = ChannelListener(pi, spool, _tags(), backoff_max_s=0.1)
            with pytest.raises(TLSVerificationError) as err:
                listener.run(stop)
    finally:
        give_up.cancel()
        spool.close()
    assert not stop.is_set()
    assert listener.stats.reconnects == 0 and listener.stats.connects == 0
    assert str(err.value) == (
        f"TLS certificate verification failed for GET /streamsets/channel at {tls_emulator.api} ({UNTRUSTED}): "
        f"{ADVICE}"
    )


# -- the emulator's command line ------------------------------------------------------------------------------------


def run_mock_pi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_pi", "--port", "0", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tls_flags_go_together_and_must_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        EmulatorConfig(tls_cert="server.pem")
    (tmp_path / "one").mkdir()
    (tmp_path / "other").mkdir()
    one, other = make_pki(tmp_path / "one"), make_pki(tmp_path / "other")

    lone = run_mock_pi("--tls-cert", str(one.cert))
    assert lone.returncode == 2
    assert "mock_pi: invalid configuration: tls_cert and tls_key go together" in lone.stderr

    mismatched = run_mock_pi("--tls-cert", str(one.cert), "--tls-key", str(other.key))
    assert mismatched.returncode == 2
    assert f"cannot load --tls-cert {str(one.cert)!r} with --tls-key {str(other.key)!r}" in mismatched.stderr
