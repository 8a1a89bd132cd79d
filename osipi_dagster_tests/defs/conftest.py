"""Fixtures for the Dagster layer tests: resources pointed at the shared emulator, tmp lakes, expected values.

Expected values come from mock_pi's own model (same seed, same frozen clock), never from the code under test.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from mock_pi.af import AFModel
from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import af_attributes, af_elements, pi_points
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster_tests.emulator import Emulator

# Must match the shared `emulator` fixture (osipi_dagster_tests/conftest.py).
SEED, TAGS = 42, 500
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
# Eleven temperature tags over both data servers (spacings 5 s to ~3 h, some with duplicate timestamps):
# about 1,400 values per hour, so a partition takes well under a second.
TAG_FILTER = "U1*-TI*"
US = 1_000_000


def us(moment: datetime) -> int:
    return int(moment.timestamp()) * US


@dataclass
class Model:
    """mock_pi's deterministic model, built in-process for expected values."""

    catalog: Catalog
    archive: Archive
    af: AFModel

    def tag_indices(self, name_filter: str) -> list[int]:
        rx = re.compile(
            "(?i)^"
            + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name_filter)
            + "$"
        )
        return [i for i, name in enumerate(self.catalog.names) if rx.match(name)]

    def recorded(self, name_filter: str, start: datetime, end: datetime) -> pl.DataFrame:
        """(web_id, timestamp_us) of every archive event in [start, end), in archive order per tag."""
        rows: list[pl.DataFrame] = []
        for i in self.tag_indices(name_filter):
            point = self.catalog.point_at(i)
            vals = self.archive.recorded(point, us(start), us(end))
            ts = np.asarray(vals.ts_us, dtype=np.int64)
            ts = ts[ts < us(end)]
            rows.append(
                pl.DataFrame(
                    {"web_id": [point.web_id] * len(ts), "ts_us": ts},
                    schema={"web_id": pl.Utf8, "ts_us": pl.Int64},
                )
            )
        return pl.concat(rows) if rows else pl.DataFrame(schema={"web_id": pl.Utf8, "ts_us": pl.Int64})


@pytest.fixture(scope="session")
def model() -> Model:
    config = EmulatorConfig(seed=SEED, tags=TAGS, clock=f"frozen:{NOW.isoformat()}")
    catalog = Catalog(SEED, TAGS, config.data_servers)
    return Model(catalog=catalog, archive=Archive(SEED, lambda: us(NOW)), af=AFModel(config, catalog))


def make_resources(api: str, lake: Path, **pi_fields: object) -> dict[str, object]:
    return {
        "pi": PIWebAPIResource(pi_web_api_url=api, **{"tag_filter": TAG_FILTER, **pi_fields}),
        "lake": LakeResource(root_uri=str(lake)),
    }


@pytest.fixture(scope="session")
def catalogue_lake(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake holding one catalogue + AF snapshot of the shared emulator; copy it, never write to it."""
    lake = tmp_path_factory.mktemp("catalogue_lake") / "lake"
    result = dg.materialize(
        [pi_points, af_elements, af_attributes],
        resources=make_resources(emulator.api, lake),
    )
    assert result.success
    return lake


@pytest.fixture
def lake(catalogue_lake: Path, tmp_path: Path) -> Path:
    """A private lake that starts with the shared catalogue snapshot."""
    target = tmp_path / "lake"
    shutil.copytree(catalogue_lake, target)
    return target


@pytest.fixture
def resources(emulator: Emulator, lake: Path) -> dict[str, object]:
    return make_resources(emulator.api, lake)


def read_table(lake: Path, table: str) -> pl.DataFrame:
    """Read a Delta table back with polars' own Delta reader (independent of the lake writer)."""
    return pl.read_delta(str(lake / table))


ReadTable = Callable[[Path, str], pl.DataFrame]
