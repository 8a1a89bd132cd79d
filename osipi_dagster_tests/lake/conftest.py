"""Fixtures for the lake tests: a fresh lake per test under tmp_path and an independent Delta reader.

Reads go through deltalake.DeltaTable / pyarrow directly, never through the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import Lake

UTC = dt.UTC
DAY = dt.datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0, day: dt.datetime = DAY) -> dt.datetime:
    return day + dt.timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micro)


def values(timestamps: Sequence[dt.datetime], value: float, web_id: str = "P1") -> pl.DataFrame:
    """Rows shaped like the PI recorded-values table (web_id, timestamp UTC us, value)."""
    return pl.DataFrame(
        {
            "web_id": [web_id] * len(timestamps),
            "timestamp": list(timestamps),
            "value": [value] * len(timestamps),
        },
        schema={"web_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64},
    )


def hour_of(hour: int, value: float, web_id: str = "P1", day: dt.datetime = DAY) -> pl.DataFrame:
    """Four rows, every 15 minutes inside one hour."""
    return values([at(hour, m, day=day) for m in (0, 15, 30, 45)], value, web_id)


def read_back(uri: str, version: int | None = None) -> pl.DataFrame:
    """Independent reader: deltalake's own pyarrow scan, sorted for exact comparison."""
    frame = pl.from_arrow(DeltaTable(uri, version=version).to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    order = [c for c in ("web_id", "timestamp", "valid_from") if c in frame.columns]
    return frame.sort(order) if order else frame


def delta_version(uri: str) -> int:
    return DeltaTable(uri).version()
