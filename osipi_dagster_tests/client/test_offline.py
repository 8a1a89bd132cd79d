"""Client pieces that need no server: PI time parsing, decoding of official samples and odd bodies, errors, auth reprs.

Expected values are written out by hand from the PI Web API documentation samples.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import VALUES_SCHEMA, AuthConfig, ClientConfig
from osipi_dagster.lib.piwebapi.auth import build_auth
from osipi_dagster.lib.piwebapi.decode import StreamChunk, decode_end_values, decode_streamset, values_frame
from osipi_dagster.lib.piwebapi.errors import PIWebAPIError, ResponseError, TooManyValuesError
from osipi_dagster.lib.piwebapi.http import check_web_exception
from osipi_dagster.lib.piwebapi.pitime import PITimeError, parse_interval, parse_time, to_pi
from osipi_dagster_tests.samples import sample

NOW = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", "2024-05-01T12:30:15Z"),
        ("*-1d", "2024-04-30T12:30:15Z"),
        ("*+1h", "2024-05-01T13:30:15Z"),
        ("-1.5d", "2024-04-30T00:30:15Z"),
        ("t", "2024-05-01T00:00:00Z"),
        ("today", "2024-05-01T00:00:00Z"),
        ("y", "2024-04-30T00:00:00Z"),
        ("y+8h", "2024-04-30T08:00:00Z"),
        ("t-3h", "2024-04-30T21:00:00Z"),
        ("monday", "2024-04-29T00:00:00Z"),
        ("wed", "2024-05-01T00:00:00Z"),
        ("*-1mo", "2024-04-01T12:30:15Z"),
        ("2024-05-01", "2024-05-01T00:00:00Z"),
        ("2024-05-01T06:00:00", "2024-05-01T06:00:00Z"),  # naive = UTC
        ("2024-05-01T06:00:00Z", "2024-05-01T06:00:00Z"),
        ("2024-05-01T08:00:00+02:00", "2024-05-01T06:00:00Z"),
        ("2024-05-01T06:00:00.25Z", "2024-05-01T06:00:00.250000Z"),
    ],
)
def test_pi_time_expressions(text: str, expected: str) -> None:
    assert to_pi(parse_time(text, NOW)) == expected


def test_pi_time_errors_and_datetimes() -> None:
    with pytest.raises(PITimeError, match="'yesterdayish'"):
        parse_time("yesterdayish", NOW)
    with pytest.raises(PITimeError, match="unknown time unit 'q'"):
        parse_time("*-1q", NOW)
    with pytest.raises(PITimeError, match="no time zone"):
        parse_time(datetime(2024, 1, 1), NOW)
    aware = datetime(2024, 1, 1, 2, tzinfo=UTC) + timedelta(0)
    assert parse_time(aware) == aware
    assert parse_interval("1h") == timedelta(hours=1)
    assert parse_interval("500ms") == timedelta(milliseconds=500)
    with pytest.raises(PITimeError):
        parse_interval("1mo")


def test_channel_message_sample_with_string_booleans() -> None:
    body = sample("channel_message.json")
    frame = decode_streamset(body)
    assert frame.schema == VALUES_SCHEMA
    web_id = "I1AbEDqD5loBNH0erqeqJodtALAaqQoQHk26BGgMQAVXYR0Ag8rvbPp_xUEC80vMunHcq2g"
    assert frame.to_dicts() == [
        {
            "web_id": web_id,
            "timestamp": datetime(2014, 7, 22, 14, tzinfo=UTC),
            "ordinal": 0,
            "value": 2.3,
            "value_text": None,
            "digital_code": None,
            "is_system": False,
            "good": True,
            "questionable": False,
            "substituted": False,
            "annotated": False,  # absent in the sample
            "units": "m",
        },
        {
            "web_id": web_id,
            "timestamp": datetime(2014, 7, 22, 15, tzinfo=UTC),
            "ordinal": 0,
            "value": 2.5,
            "value_text": None,
            "digital_code": None,
            "is_system": False,
            "good": True,
            "questionable": False,
            "substituted": False,
            "annotated": False,
            "units": "m",
        },
    ]


def test_webexception_sample_is_never_accepted() -> None:
    body = sample("errors_webexception.json")
    with pytest.raises(Exception) as info:
        check_web_exception(body, "GET", "/streamsets/recorded")
    error = info.value.error  # type: ignore[attr-defined]
    assert isinstance(error, ResponseError)
    assert error.status == 500
    assert "GET /streamsets/recorded" in str(error)
    assert "Error occurred during writing of the output stream." in str(error)


def test_stream_end_sample_and_every_value_kind() -> None:
    end = sample("stream_getend.json")
    frame = decode_end_values({"Items": [{"WebId": "W", "Value": end}]})
    assert frame.select("value", "units", "good").to_dicts() == [{"value": 12.3, "units": "m", "good": True}]

    items = [
        {
            "Timestamp": "2024-05-01T00:00:00Z",
            "Value": 1,
            "Good": True,
            "Questionable": False,
            "Substituted": False,
        },
        # System state on a numeric point, IsSystem present.
        {
            "Timestamp": "2024-05-01T00:00:01Z",
            "Value": {"Name": "Shutdown", "Value": 254, "IsSystem": True},
            "Good": False,
            "Questionable": False,
            "Substituted": False,
            "Annotated": True,
        },
        # Older servers omit IsSystem: the SYSTEM code range decides.
        {
            "Timestamp": "2024-05-01T00:00:01Z",
            "Value": {"Name": "I/O Timeout", "Value": 246},
            "Good": False,
            "Questionable": False,
            "Substituted": False,
        },
        {
            "Timestamp": "2024-05-01T00:00:02.123456Z",
            "Value": {"Name": "Auto", "Value": 1, "IsSystem": False},
            "Good": True,
            "Questionable": True,
            "Substituted": True,
        },
        {"Timestamp": "2024-05-01T00:00:03Z", "Value": "hello", "Good": True},
        {"Timestamp": "2024-05-01T00:00:04Z", "Value": "2024-01-01T00:00:00Z"},
        {"Timestamp": "2024-05-01T00:00:05+00:00", "Value": 2.5},
    ]
    frame = values_frame([StreamChunk("W", items, "°C")])
    rows = frame.select(
        "timestamp",
        "ordinal",
        "value",
        "value_text",
        "digital_code",
        "is_system",
        "good",
        "questionable",
        "substituted",
        "annotated",
    ).rows()
    t = datetime(2024, 5, 1, tzinfo=UTC)
    s = timedelta(seconds=1)
    assert rows == [
        (t, 0, 1.0, None, None, False, True, False, False, False),
        (t + s, 0, None, "Shutdown", 254, True, False, False, False, True),
        (t + s, 1, None, "I/O Timeout", 246, True, False, False, False, False),
        (t + 2 * s + timedelta(microseconds=123456), 0, None, "Auto", 1, False, True, True, True, False),
        (t + 3 * s, 0, None, "hello", None, False, True, False, False, False),
        (t + 4 * s, 0, None, "2024-01-01T00:00:00Z", None, False, True, False, False, False),
        (t + 5 * s, 0, 2.5, None, None, False, True, False, False, False),
    ]
    assert frame["units"].unique().to_list() == ["°C"]


def test_ordinal_offset_continues_a_run() -> None:
    items = [{"Timestamp": "2024-05-01T00:00:00Z", "Value": v} for v in (1.0, 2.0)]
    items.append({"Timestamp": "2024-05-01T00:00:01Z", "Value": 3.0})
    frame = values_frame([StreamChunk("A", items, "", ordinal_offset=3), StreamChunk("B", items[:1], "")])
    assert frame.select("web_id", "ordinal", "value").rows() == [
        ("A", 3, 1.0),
        ("A", 4, 2.0),
        ("A", 0, 3.0),
        ("B", 0, 1.0),
    ]


def test_errors_in_items_raise_with_the_web_id() -> None:
    body = {"Items": [{"WebId": "BAD", "Items": [], "Errors": ["Point not found"]}]}
    with pytest.raises(ResponseError, match=r"web id BAD.*Point not found"):
        decode_streamset(body, "recorded values")
    value_error = {
        "Items": [
            {
                "WebId": "W",
                "Items": [
                    {
                        "Timestamp": "2024-05-01T00:00:00Z",
                        "Value": 1,
                        "Errors": [{"FieldName": "Value", "Message": "boom"}],
                    }
                ],
            }
        ]
    }
    with pytest.raises(ResponseError, match="boom"):
        decode_streamset(value_error)


def test_error_messages_name_request_status_and_fix() -> None:
    err = PIWebAPIError.for_status(404, "GET", "/streams/X/recorded", web_id="X", server_errors=["Unknown"])
    assert str(err).startswith("PI Web API returned 404 for GET /streams/X/recorded (web id X)")
    assert "re-run discovery" in str(err)
    too_many = PIWebAPIError.for_status(
        400,
        "GET",
        "/streamsets/recorded",
        server_errors=[
            "The maximum number of items returned (200000) is greater than the maximum allowed (150000)."
        ],
    )
    assert isinstance(too_many, TooManyValuesError) and too_many.limit == 150000


def test_secrets_stay_out_of_reprs() -> None:
    basic = AuthConfig(method="basic", username="DOMAIN\\me", password="s3cr3t-pw")
    oidc = AuthConfig(
        method="bearer",
        oidc_token_url="https://idp/connect/token",
        oidc_client_id="c",
        oidc_client_secret="s3cr3t-cs",
    )
    bearer = AuthConfig(method="bearer", bearer_token="s3cr3t-tok")
    for cfg in (basic, oidc, bearer):
        text = repr(ClientConfig("https://pi/piwebapi", auth=cfg)) + repr(build_auth(cfg))
        assert "s3cr3t" not in text
    request = httpx.Request("GET", "https://pi/piwebapi/")
    flow = build_auth(basic).sync_auth_flow(request)
    assert next(flow).headers["Authorization"] == "Basic RE9NQUlOXG1lOnMzY3IzdC1wdw=="
    with pytest.raises(ValueError, match="PI_USERNAME/PI_PASSWORD"):
        AuthConfig(method="basic", username="me")


def test_kerberos_without_its_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import spnego` raise ImportError, as on a machine without the extra.
    monkeypatch.setitem(sys.modules, "spnego", None)
    auth = build_auth(AuthConfig(method="kerberos"))
    flow = auth.sync_auth_flow(httpx.Request("GET", "https://pi.example.com/piwebapi/"))
    with pytest.raises(PIWebAPIError, match=r"Kerberos auth needs pyspnego") as info:
        next(flow)
    assert "osipi-dagster[kerberos]" in str(info.value)


def test_empty_frames_keep_the_schema() -> None:
    assert decode_streamset({"Items": []}).schema == VALUES_SCHEMA
    assert values_frame([]).schema == VALUES_SCHEMA
    assert pl.DataFrame(schema=VALUES_SCHEMA).is_empty()
