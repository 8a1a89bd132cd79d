"""mock_pi's --value-rate: N times the values per second at real time, deterministic by seed, rate 1 the default.

The archive is compared across rates per kind of point (irregular, every scan, compressed by deadband, digital by
rate), then through real channels: a frozen clock is moved by 10 minutes and each emulator's channel message is
counted and checked against its own /recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import websockets

from mock_pi.__main__ import config_from_args
from mock_pi.archive import Archive
from mock_pi.catalog import Catalog, Point
from mock_pi.config import EmulatorConfig
from osipi_dagster_tests.emulator import Emulator, start_emulator
from osipi_dagster_tests.mock_pi.test_channels import (
    advance,
    by_stream,
    now,
    receive_data,
    recorded_after,
    ws_url,
)

US = 1_000_000
NOW = int(datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()) * US
TAGS = 2000
FROZEN = "frozen:2024-05-01T12:00:00Z"


def kind(point: Point) -> str:
    if not point.scan_us:
        return "irregular"
    if point.deadband_frac:
        return "deadband"
    return "every scan" if point.archive_rate == 1.0 else "by rate"


def counts(rate: int, start_us: int, end_us: int) -> dict[str, int]:
    """Recorded values in [start, end] of every point of a seed-42 catalog at `rate`, by kind of point."""
    catalog = Catalog(42, TAGS, 2, rate)
    archive = Archive(42, lambda: NOW)
    out: dict[str, int] = {}
    for i in range(TAGS):
        point = catalog.point_at(i)
        out[kind(point)] = out.get(kind(point), 0) + len(archive.recorded(point, start_us, end_us))
    return out


def test_rate_one_is_the_default_catalog_and_bad_rates_are_refused() -> None:
    default, one = Catalog(42, 500), Catalog(42, 500, 2, 1)
    assert [default.point_at(i) for i in range(500)] == [one.point_at(i) for i in range(500)]
    assert EmulatorConfig().value_rate == 1 and config_from_args([]).value_rate == 1
    assert config_from_args(["--value-rate", "10"]).value_rate == 10
    for bad in ("0", "3", "200"):
        with pytest.raises(ValueError, match=rf"value_rate must be a whole number from 1 to 100 .*got {bad}"):
            config_from_args(["--value-rate", bad])


def test_rate_ten_is_ten_times_the_values_of_every_kind_of_point() -> None:
    """One hour of 2,000 tags: 10.0× overall within ±5 %, each kind of point within ±10 %; the points keep their
    identity (names, WebIds, scan classes) and the values stay a pure function of the seed."""
    start, end = NOW - 3600 * US, NOW
    base, fast = counts(1, start, end), counts(10, start, end)
    assert set(base) == set(fast) == {"irregular", "deadband", "every scan", "by rate"}
    assert 9.5 <= sum(fast.values()) / sum(base.values()) <= 10.5
    for k in base:
        assert 9.0 <= fast[k] / base[k] <= 11.0, (k, base[k], fast[k])
    slow_cat, fast_cat = Catalog(42, TAGS), Catalog(42, TAGS, 2, 10)
    for i in range(TAGS):
        a, b = slow_cat.point_at(i), fast_cat.point_at(i)
        assert (a.name, a.web_id, a.scan_class, a.point_type) == (
            b.name,
            b.web_id,
            b.scan_class,
            b.point_type,
        )
        if a.scan_us:
            assert b.scan_us * 10 == a.scan_us
        else:  # a tenth of the spacing, to whole quanta
            assert 0.95 * a.spacing_us <= b.spacing_us * 10 <= a.spacing_us, (a.spacing_us, b.spacing_us)
    assert counts(10, NOW - 600 * US, NOW) == counts(10, NOW - 600 * US, NOW)


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Emulator]]:
    args = ("--seed", "42", "--tags", "400", "--clock", FROZEN, "--admin", "--channel-poll-ms", "40")
    log = tmp_path_factory.mktemp("value_rate")
    with (
        start_emulator(*args, log_dir=log) as one,
        start_emulator(*args, "--value-rate", "10", log_dir=log) as ten,
    ):
        yield {1: one, 10: ten}


def test_channels_carry_ten_times_the_values(emulators: dict[int, Emulator]) -> None:
    """The same 200 streams on each emulator, 10 minutes of PI time: rate 10 sends 8–12× the values, and each
    stream's values are exactly what that emulator's /recorded holds (denser values, same model)."""
    with httpx.Client(timeout=30) as http:
        server = http.get(f"{emulators[1].api}/dataservers").json()["Items"][0]
        points = http.get(server["Links"]["Points"], params={"maxCount": 200}).json()["Items"]
    ids = [p["WebId"] for p in points]

    async def window(emu: Emulator) -> tuple[datetime, datetime, dict]:
        url = ws_url(emu, "/streamsets/channel?" + "&".join(f"webId={w}" for w in ids))
        async with websockets.connect(url, max_size=None) as ws:
            start = now(emu)
            end = advance(emu, "10m")
            return start, end, await receive_data(ws, 30)

    sent: dict[int, int] = {}
    for rate, emu in emulators.items():
        start, end, message = asyncio.run(window(emu))
        got = by_stream(message)
        sent[rate] = sum(len(v) for v in got.values())
        for w in ids[:40]:  # each stream's values: exactly the archive's (a sample keeps the test short)
            assert got.get(w, []) == recorded_after(emu, w, start, end)
    assert sent[1] > 500
    assert 8.0 <= sent[10] / sent[1] <= 12.0, sent
