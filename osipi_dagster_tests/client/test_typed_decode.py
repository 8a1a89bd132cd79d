"""The msgspec path (typed.parse_streamset) decodes stream-set bodies to exactly the frames of the orjson path: same
dtypes, values, nulls, ordinals; bodies it cannot type fall back to orjson's dicts and raise the same errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.piwebapi.decode import decode_streamset, streamset_chunks, values_frame
from osipi_dagster.lib.piwebapi.errors import ResponseError
from osipi_dagster.lib.piwebapi.pitime import to_pi
from osipi_dagster.lib.piwebapi.reads import SET_FIELDS
from osipi_dagster.lib.piwebapi.typed import StreamSetValues, parse_streamset
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def bodies(emulator: Emulator) -> list[bytes]:
    """Raw stream-set recorded bodies for all 500 tags × 6 h, requested as the client requests them."""
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        web_ids = [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]
        out = []
        for group in pi._url_groups(web_ids):
            params = [("webId", w) for w in group] + [
                ("startTime", to_pi(NOW - timedelta(hours=6))),
                ("endTime", to_pi(NOW)),
                ("boundaryType", "Inside"),
                ("maxCount", "150000"),
                ("selectedFields", SET_FIELDS),
            ]
            out.append(pi.session.request("GET", pi.url("streamsets/recorded", params), parse=False))
    return out


def test_typed_frames_equal_orjson_frames(bodies: list[bytes]) -> None:
    frames = []
    for raw in bodies:
        typed = parse_streamset(raw)
        assert isinstance(typed, StreamSetValues)  # the fast path was taken, not the fallback
        fast = decode_streamset(typed, "recorded values")
        slow = decode_streamset(orjson.loads(raw), "recorded values")
        assert fast.schema == slow.schema
        assert fast.equals(slow), "typed and orjson decodes differ"
        frames.append(fast)
    frame = pl.concat(frames)
    # Every kind of value the emulator sends was in the compared bodies.
    assert frame["digital_code"].is_not_null().any()  # digital states
    assert frame["is_system"].any()  # system states (e.g. "I/O Timeout")
    assert (frame["value_text"].is_not_null() & frame["digital_code"].is_null()).any()  # string points
    numbers = frame["value"].drop_nulls()
    assert (numbers != numbers.round(0)).any() and (numbers == numbers.round(0)).any()  # floats and ints
    assert (frame["ordinal"] > 0).any()  # duplicate timestamps
    assert (~frame["good"]).any()
    assert frame["units"].str.len_chars().gt(0).any()


def _value(**over: object) -> dict[str, object]:
    base = {"Timestamp": "2024-05-01T11:00:00.5Z", "Value": 1, "Good": True, "Questionable": False}
    return {**base, "Substituted": False, "Annotated": False, **over}


@pytest.mark.parametrize(
    "values",
    [
        [_value(Good="false"), _value(Questionable="True")],  # flags as strings
        [{"Timestamp": "2024-05-01T11:00:00Z", "Value": 2.5}],  # flags missing
        [_value(Value={"Name": "Shutdown", "Value": 254, "IsSystem": True}), _value(Value=None)],
        [_value(Value=True), _value(Value="text"), _value(Value=[1, 2]), _value(Value=2**70)],
        [_value(Timestamp="2024-05-01T13:00:00+02:00")],
    ],
)
def test_odd_values_decode_alike(values: list[dict[str, object]]) -> None:
    # json, not orjson: orjson.dumps refuses integers beyond 64 bits, which a server can still send.
    raw = json.dumps({"Items": [{"WebId": "W1", "UnitsAbbreviation": "m", "Items": values}]}).encode()
    fast = decode_streamset(parse_streamset(raw))
    assert fast.equals(decode_streamset(orjson.loads(raw)))
    assert len(fast) == len(values)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"Items": [{"WebId": "W1", "Errors": ["boom"]}]},
            "reported errors for recorded values (web id W1): server said: boom",
        ),
        ({"Items": [{"WebId": "W1", "Items": [_value(Errors=["bad"])]}]}, "reported errors for a value"),
        ({"Items": [{"WebId": "", "Items": []}]}, "a stream without a WebId"),
        ({"Items": [{"WebId": "W1", "Items": [{"Value": 1}]}]}, "a value without a Timestamp ({'Value': 1})"),
        ({"Items": [{"WebId": "W1", "Items": [_value(Timestamp=None)]}]}, "a value with a null Timestamp"),
        ({"Items": {"WebId": "W1"}}, "Items is a dict, not a list"),
        ([1], "the body is a list, not an object"),
    ],
)
def test_untypable_bodies_fall_back_and_raise_the_same(body: object, message: str) -> None:
    raw = orjson.dumps(body)
    parsed = parse_streamset(raw)
    assert not isinstance(parsed, StreamSetValues)
    with pytest.raises(ResponseError) as fast:
        decode_streamset(parsed, "recorded values")
    with pytest.raises(ResponseError) as slow:
        decode_streamset(orjson.loads(raw), "recorded values")
    assert str(fast.value) == str(slow.value) and message in str(fast.value)


def test_not_json_raises_orjson_error() -> None:
    assert parse_streamset(b"") is None
    with pytest.raises(orjson.JSONDecodeError):
        parse_streamset(b"<html>proxy error</html>")


def test_typed_and_dict_chunks_in_one_frame() -> None:
    raw = orjson.dumps(
        {
            "Items": [
                {"WebId": "W1", "Items": [_value(), _value()]},
                {"WebId": "W2", "Items": [_value(Value=3.5)]},
            ]
        }
    )
    typed = streamset_chunks(parse_streamset(raw), "recorded values")
    plain = streamset_chunks(orjson.loads(raw), "recorded values")
    expected = values_frame(plain)
    assert values_frame([typed[0], plain[1]]).equals(expected)
    assert expected["ordinal"].to_list() == [0, 1, 0] and expected["value"].to_list() == [1.0, 1.0, 3.5]
