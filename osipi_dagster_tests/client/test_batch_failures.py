"""Never a silent null: inside a 207, only a 404 means "absent"; a 500 (after retries), a WebException or a malformed
sub-response raises naming the request and the web id/path. The emulator never fails a sub-request with a 500, so a
canned server on 127.0.0.1 answers the same 207 shapes a real PI Web API sends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, PIWebAPIError
from osipi_dagster.lib.piwebapi.errors import ResponseError
from osipi_dagster_tests.client.canned import CannedServer

TS = "2024-05-01T00:00:00Z"
FAST = {"max_retries": 2, "backoff_base_s": 0.001, "backoff_max_s": 0.002}


def _value(v: Any) -> dict[str, Any]:
    return {"Timestamp": TS, "Value": v, "Good": True, "Questionable": False, "Substituted": False}


def _attr(web_id: str, static: bool) -> dict[str, Any]:
    return {
        "WebId": web_id,
        "Name": web_id.lower(),
        "Path": f"\\\\AF\\DB\\EF|{web_id.lower()}",
        "Type": "Double",
        "DataReferencePlugIn": "" if static else "PI Point",
        "ConfigString": "",
    }


class Script:
    """Answers by path; `flaky[path] = n` fails that path with a 500 n times before answering normally."""

    def __init__(self, routes: dict[str, tuple[int, Any]], flaky: dict[str, int] | None = None) -> None:
        self.routes = routes
        self.flaky = Counter(flaky or {})

    def __call__(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        key = path if path in self.routes else f"{path}?path={query.get('path', [''])[0]}"
        if self.flaky[key] > 0:
            self.flaky[key] -= 1
            return 500, {"Errors": ["An unexpected error occurred."]}
        return self.routes.get(key, (404, {"Errors": [f"'{key}' was not found."]}))


def _client(server: CannedServer) -> PIWebAPIClient:
    return PIWebAPIClient(ClientConfig(server.api, **FAST))


def test_point_web_ids_404_is_none_but_500_raises_naming_the_tag() -> None:
    routes = {
        "/points?path=\\\\SRV\\good": (200, {"WebId": "P-GOOD", "Path": "\\\\SRV\\good"}),
        "/points?path=\\\\SRV\\broken": (500, {"Errors": ["PI Data Archive connection lost."]}),
    }
    with CannedServer(Script(routes)) as server, _client(server) as pi:
        assert pi.point_web_ids(["\\\\SRV\\good", "\\\\SRV\\gone"]) == {
            "\\\\SRV\\good": "P-GOOD",
            "\\\\SRV\\gone": None,
        }
        with pytest.raises(PIWebAPIError) as info:
            pi.point_web_ids(["\\\\SRV\\good", "\\\\SRV\\broken"])
    err = info.value
    assert err.status == 500
    assert str(err).startswith(
        "PI Web API returned 500 for GET /points (in POST /batch) for PI point '\\\\\\\\SRV\\\\broken': "
        "server said: PI Data Archive connection lost."
    )
    # One batch for the first call; for the second 1 + max_retries batches (the good path is cached).
    assert server.calls.count("/points?path=%5C%5CSRV%5Cbroken&selectedFields=WebId%3BPath") == 3


def test_point_web_ids_malformed_answer_raises() -> None:
    routes = {"/points?path=\\\\SRV\\odd": (200, {"Name": "odd"})}
    with (
        CannedServer(Script(routes)) as server,
        _client(server) as pi,
        pytest.raises(
            ResponseError, match=r"GET /points \(in POST /batch\) for PI point .*odd.* without a WebId"
        ),
    ):
        pi.point_web_ids(["\\\\SRV\\odd"])


def _ef_routes(value_b: tuple[int, Any]) -> dict[str, tuple[int, Any]]:
    return {
        "/eventframes/EF1/attributes": (
            200,
            {"Items": [_attr("A", False), _attr("B", True), _attr("C", False)]},
        ),
        "/attributes/A/value": (200, _value(1.5)),
        "/attributes/B/value": value_b,
        "/attributes/C/value": (404, {"Errors": ["The attribute 'C' was not found."]}),
    }


def test_event_frame_fan_out_transient_500_is_retried_and_404_is_null() -> None:
    script = Script(_ef_routes((200, _value("static text"))), flaky={"/attributes/B/value": 1})
    with CannedServer(script) as server, _client(server) as pi:
        frame = next(pi.iter_event_frame_attributes(["EF1"]))
        calls = pi.stats.http_calls
    assert frame["web_id"].to_list() == ["A", "B", "C"]
    assert frame["value"].to_list() == [1.5, None, None]
    assert frame["value_text"].to_list() == [None, "static text", None]
    assert frame["timestamp"].null_count() == 1  # only C (404: absent)
    # The 207's failed item B was re-read on its own: one batch with the template, one with the concrete URL.
    assert calls == 2 and server.calls.count("/attributes/B/value") == 2


def test_event_frame_fan_out_persistent_500_raises_naming_the_attribute() -> None:
    broken = (500, {"Errors": ["AF server timeout."]})
    with (
        CannedServer(Script(_ef_routes(broken))) as server,
        _client(server) as pi,
        pytest.raises(PIWebAPIError) as info,
    ):
        next(pi.iter_event_frame_attributes(["EF1"]))
    err = info.value
    assert err.status == 500 and err.web_id == "B"
    assert str(err).startswith(
        "PI Web API returned 500 for GET /attributes/B/value (in POST /batch) (web id B)"
    )
    assert "AF server timeout." in str(err)
    assert server.calls.count("/attributes/B/value") == 1 + FAST["max_retries"]


def test_event_frame_fan_out_malformed_value_raises() -> None:
    with (
        CannedServer(Script(_ef_routes((200, {"Value": 3.0})))) as server,
        _client(server) as pi,
        pytest.raises(ResponseError) as info,
    ):
        next(pi.iter_event_frame_attributes(["EF1"]))
    assert info.value.web_id == "B"
    assert "GET /attributes/B/value (in POST /batch)" in str(info.value)
    assert "without a TimedValue" in str(info.value)


def test_static_attribute_value_500_raises_naming_the_attribute_path() -> None:
    routes = {
        "/elements/E1/attributes": (200, {"Items": [_attr("S1", True), _attr("S2", True)]}),
        "/attributes/S1/value": (200, _value(7)),
        "/attributes/S2/value": (503, {"Errors": ["Service unavailable."]}),
    }
    with CannedServer(Script(routes)) as server, _client(server) as pi, pytest.raises(PIWebAPIError) as info:
        next(pi.iter_attributes(["E1"]))
    err = info.value
    assert err.status == 503 and err.web_id == "S2"
    assert "GET /attributes/S2/value (in POST /batch) (web id S2)" in str(err)
    assert "for attribute '\\\\\\\\AF\\\\DB\\\\EF|s2'" in str(err)
    assert server.calls.count("/attributes/S2/value") == 1 + FAST["max_retries"]


def test_transient_listing_failure_resends_the_listing_and_its_template() -> None:
    script = Script(_ef_routes((200, _value(2))), flaky={"/eventframes/EF1/attributes": 1})
    with CannedServer(script) as server, _client(server) as pi:
        frame = next(pi.iter_event_frame_attributes(["EF1"]))
        assert pi.stats.http_calls == 2 and pi.stats.retries == 2  # the listing and its dependent template
    assert frame["value"].to_list() == [1.5, 2.0, None]
    # First batch: the listing failed, so its template never ran; second batch: both.
    assert server.calls.count("/eventframes/EF1/attributes?startIndex=0&maxCount=1000") == 2
    assert server.calls.count("/attributes/A/value") == 1
