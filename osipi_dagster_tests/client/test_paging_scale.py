"""Paging at the real page size: more than 1,000 points on one server and more than 1,200 children of one element.

Small page sizes elsewhere prove the mechanics; these prove the defaults (maxCount 1000) lose nothing at scale.
"""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster_tests.emulator import Emulator


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from osipi_dagster_tests.emulator import start_emulator

    args = ("--seed", "11", "--tags", "2600", "--elements-per-db", "6500", "--af-databases", "1")
    with start_emulator(*args, log_dir=tmp_path_factory.mktemp("big")) as emu:
        yield emu


def test_more_than_1000_points_per_server_at_default_page_size(big: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(big.api)) as pi:
        for server in pi.data_servers():
            frames = list(pi.iter_points(server))
            points = pl.concat(frames)
            assert len(frames) == 2, "1,300 points must take exactly two pages of 1,000"
            assert points.height == 1300
            assert points["web_id"].n_unique() == 1300
            assert set(points["server"].unique()) == {server.name}


def test_element_with_more_than_1200_children_is_fully_paged(big: Emulator) -> None:
    with PIWebAPIClient(ClientConfig(big.api)) as pi:
        db = pi.asset_databases(pi.asset_servers()[0])[0]
        elements = pl.concat(list(pi.iter_elements(db)))
        flat = [
            e["WebId"]
            for page in pi.iter_collection(
                f"assetdatabases/{db.web_id}/elements", [("searchFullHierarchy", "true")]
            )
            for e in page
        ]
    children = Counter(elements["parent_web_id"].drop_nulls().to_list())
    widest_parent, widest = children.most_common(1)[0]
    assert widest > 1200, f"the emulator's widest element has only {widest} children"
    assert elements["web_id"].n_unique() == elements.height == len(flat)
    assert sorted(elements["web_id"].to_list()) == sorted(flat)
    assert elements.filter(pl.col("web_id") == widest_parent).height == 1
