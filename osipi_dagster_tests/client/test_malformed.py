"""Malformed replies raise `ResponseError` naming method, path and web id (never KeyError, never null web ids), and
a stream set's 404 for one stale web id skips that id (recorded in stats.missing_web_ids) instead of failing the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, NotFoundError, PIWebAPIClient
from osipi_dagster.lib.piwebapi.errors import ResponseError
from osipi_dagster_tests.client.canned import CannedServer
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
START = NOW - timedelta(hours=1)
FAST = {"max_retries": 1, "backoff_base_s": 0.001, "backoff_max_s": 0.002}
GOOD = {
    "Timestamp": "2024-05-01T11:00:00Z",
    "Value": 1.0,
    "Good": True,
    "Questionable": False,
    "Substituted": False,
}


def _read(body: Any, web_ids: list[str], read: str = "recorded") -> ResponseError:
    """Serve `body` for every GET and return the error the client raises for `read`."""
    with (
        CannedServer(lambda path, query: (200, body)) as server,
        PIWebAPIClient(ClientConfig(server.api, **FAST)) as pi,
        pytest.raises(ResponseError) as info,
    ):
        if read == "recorded":
            pi.recorded(web_ids, START, NOW)
        elif read == "summary":
            pi.summary(web_ids, START, NOW, ("Average",))
        else:
            pi.end_values(web_ids)
    return info.value


def test_value_without_timestamp() -> None:
    bad = {"Value": 2.0, "Good": True, "Questionable": False, "Substituted": False}
    err = _read(
        {"Items": [{"WebId": "W1", "Items": [GOOD]}, {"WebId": "W2", "Items": [GOOD, bad]}]}, ["W1", "W2"]
    )
    assert err.method == "GET" and err.path == "/streamsets/recorded" and err.web_id == "W2"
    assert str(err).startswith(
        "PI Web API sent a malformed response: a value without a Timestamp ({'Value': 2.0, 'Good': True, "
    )
    assert "(web id W2), in the answer to GET /streamsets/recorded" in str(err)


def test_value_with_null_timestamp() -> None:
    bad = dict(GOOD, Timestamp=None)
    err = _read({"Items": [{"WebId": "W1", "Items": [GOOD]}, {"WebId": "W2", "Items": [bad]}]}, ["W1", "W2"])
    assert err.web_id == "W2" and err.path == "/streamsets/recorded"
    assert "a value with a null Timestamp (web id W2)" in str(err)


def test_items_not_a_list() -> None:
    err = _read({"Items": {"WebId": "W1"}}, ["W1"])
    assert (err.method, err.path, err.web_id) == ("GET", "/streamsets/recorded", "W1")
    assert "recorded values: Items is a dict, not a list, in the answer to GET /streamsets/recorded" in str(
        err
    )


def test_stream_items_not_a_list() -> None:
    err = _read({"Items": [{"WebId": "W1", "Items": "oops"}]}, ["W1"])
    assert err.web_id == "W1" and "the stream's Items is a str, not a list (web id W1)" in str(err)


def test_item_without_web_id() -> None:
    err = _read({"Items": [{"WebId": "W1", "Items": [GOOD]}, {"Items": [GOOD]}]}, ["W1", "W2"])
    assert err.path == "/streamsets/recorded" and err.web_id is None
    assert "recorded values for a stream without a WebId" in str(err)


def test_requested_stream_missing_from_the_answer() -> None:
    err = _read({"Items": [{"WebId": "W1", "Items": [GOOD]}]}, ["W1", "W2"])
    assert "no item for 1 requested stream(s), first W2, in the answer to GET /streamsets/recorded" in str(
        err
    )


def test_summary_entry_without_value_and_end_value_missing() -> None:
    err = _read({"Items": [{"WebId": "W1", "Items": [{"Type": "Average"}]}]}, ["W1"], "summary")
    assert err.path == "/streamsets/summary" and err.web_id == "W1"
    assert "a summary without a timestamped Value" in str(err)
    err = _read({"Items": [{"WebId": "W1"}]}, ["W1"], "end")
    assert err.path == "/streamsets/end" and "the end value: the stream has no TimedValue in Value" in str(
        err
    )


def test_non_json_body_after_retries() -> None:
    err = _read(b"<html>proxy error</html>", ["W1"])
    assert (err.method, err.path, err.web_id, err.status) == ("GET", "/streamsets/recorded", "W1", 200)
    assert str(err).startswith(
        "PI Web API sent an unreadable (truncated?) body of 24 bytes for GET /streamsets/recorded (web id W1) "
        "(after 2 attempts)"
    )


# -- a stale web id among many (real emulator) ----------------------------------------------------------------------

STALE = "F1DPstaleWebIdOfADeletedTag"


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


def test_stale_web_id_is_skipped_and_reported(emulator: Emulator, expected: Expected) -> None:
    points = [expected.point(i) for i in range(8)]
    ids = [p.web_id for p in points]
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.recorded([*ids[:4], STALE, *ids[4:]], START, NOW)
        # 404 for the group, one batch re-asking each id singly, the group again without the stale id.
        assert pi.stats.http_calls == 3
        assert list(pi.stats.missing_web_ids) == [STALE]
        assert "Unknown or invalid WebID 'F1DPstaleWebIdOfADeletedTag'" in pi.stats.missing_web_ids[STALE]
        assert_same(got, expected.recorded(points, START, NOW, include_end=False))

        # Known missing now: later reads leave it out without another 404.
        calls = pi.stats.http_calls
        again = pi.interpolated([STALE, ids[0]], START, NOW, "10m")
        assert pi.stats.http_calls - calls == 1
        assert again["web_id"].unique().to_list() == [ids[0]] and len(again) == 7


def test_interpolated_skips_a_stale_web_id(emulator: Emulator, expected: Expected) -> None:
    ids = [expected.point(i).web_id for i in range(3)]
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        got = pi.interpolated([ids[0], STALE, ids[1], ids[2]], START, NOW, "30m")
        want = pi.interpolated(ids, START, NOW, "30m")
        assert set(pi.stats.missing_web_ids) == {STALE}
    assert got.equals(want) and len(got) == 9
    assert got.filter(pl.col("web_id") == STALE).is_empty()


def test_every_web_id_unknown_raises(emulator: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        with pytest.raises(NotFoundError) as info:
            pi.recorded([STALE, STALE + "2"], START, NOW)
        assert set(pi.stats.missing_web_ids) == {STALE, STALE + "2"}
    assert info.value.status == 404 and info.value.path == "/streamsets/recorded"
    assert str(info.value).startswith(
        "PI Web API returned 404 for GET /streamsets/recorded: it knows none of the requested web ids "
        f"({STALE}, {STALE}2)"
    )
