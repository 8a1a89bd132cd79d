"""Relative PI times ('*', '*-1h') typed by users resolve on the server's clock: against an emulator frozen at
2024-05-01T12:00Z, '*-1h'..'*' is that hour, not the test machine's last hour; datetimes and ISO times cost no call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi import base as client_base
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


def test_recorded_star_minus_1h_is_the_servers_last_hour(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(6)]
    ids = [p.web_id for p in points]
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded(ids, "*-1h", "*")
        assert pi.stats.http_calls == 2  # GET /system/status once, then one stream-set call
    want = expected.recorded(points, NOW - timedelta(hours=1), NOW, include_end=False)
    assert len(want) > 0
    assert_same(got, want)


def test_one_server_time_call_per_client_call(
    emulator: Emulator, expected: Expected, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [expected.point(i).web_id for i in range(3)]
    monkeypatch.setattr(client_base, "_SERVER_CLOCK_TTL_S", 0.0)  # no reuse: every call asks once
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.interpolated(ids, "*-1h", "*", "15m")
        assert pi.stats.http_calls == 2
        assert got["timestamp"].min() == NOW - timedelta(hours=1) and got["timestamp"].max() == NOW
        summary = pi.summary(ids, "*-2h", "*-1h", ("Count",), calculation_basis="EventWeighted")
        assert pi.stats.http_calls == 4
        assert summary["timestamp"].to_list() == [NOW - timedelta(hours=2)] * 3
        plot = pi.plot(ids, "t", "*", intervals=4)
        assert pi.stats.http_calls == 6
        assert plot["timestamp"].min() == datetime(2024, 5, 1, tzinfo=UTC) and plot["timestamp"].max() == NOW
        # Datetimes and ISO texts need no clock: one call each.
        pi.recorded(ids, NOW - timedelta(hours=1), "2024-05-01T12:00:00Z")
        assert pi.stats.http_calls == 7

    monkeypatch.setattr(client_base, "_SERVER_CLOCK_TTL_S", 3600.0)  # reuse within the TTL
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        first = pi.recorded(ids, "*-1h", "*")
        second = pi.recorded(ids, "*-1h", "*")
        assert pi.stats.http_calls == 3 and first.equals(second)
