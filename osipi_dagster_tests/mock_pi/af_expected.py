"""Expected AF values for the HTTP tests, computed in-process from the same seed and clock as the shared emulator.

The event-frame search-mode definitions here are written from PI Web API's "Search Mode" topic, independently of
mock_pi's route code, so the tests compare two implementations of the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx

from mock_pi.af import AFModel, EventFrame, day_of
from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from mock_pi.pitime import parse_time

NOW_ISO = "2024-05-01T12:00:00Z"
NOW_US = parse_time(NOW_ISO, 0)
OPEN = "9999-12-31T23:59:59Z"


@cache
def model() -> AFModel:
    """The AF model of the shared `emulator` fixture (seed 42, 500 tags, defaults otherwise)."""
    cfg = EmulatorConfig(seed=42, tags=500)
    return AFModel(cfg, Catalog(cfg.seed, cfg.tags, cfg.data_servers))


@cache
def archive() -> Archive:
    return Archive(42, lambda: NOW_US)


def us(iso: str) -> int:
    return parse_time(iso, NOW_US)


def all_frames(
    db_index: int, first_day_iso: str, *, children: bool
) -> Iterator[tuple[EventFrame, int, int | None]]:
    """(frame, start, end or None while open) for every frame that has started by now, from a day on."""
    af = model()
    db = af.databases[db_index]
    for day in range(day_of(us(first_day_iso)), day_of(NOW_US) + 1):
        for top in af.frames_for_day(db, day):
            for ef in [top, *top.descendants()] if children else [top]:
                if ef.start_us <= NOW_US:
                    end = ef.planned_end_us if ef.planned_end_us <= NOW_US else None
                    yield ef, ef.start_us, end


def in_mode(mode: str, start: int, end: int | None, lo: int, hi: int) -> bool:
    never = 1 << 62
    e = never if end is None else end
    return {
        "Overlapped": start <= hi and e >= lo,
        "Inclusive": start >= lo and e <= hi,
        "StartInclusive": lo <= start <= hi,
        "EndInclusive": lo <= e <= hi,
        "InProgress": end is None and lo <= start <= hi,
    }[mode]


def get(client: httpx.Client, url: str, **params: Any) -> Any:
    """GET expecting 200. httpx 0.28 replaces a URL's query string with `params` even when empty, so pass None
    when there are none: Links URLs (paging) must be followed as given."""
    r = client.get(url, params=params or None)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r.json()
