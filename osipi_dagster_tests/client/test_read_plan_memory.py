"""Tag densities kept between runs (lib/landing/densities) against a real emulator and a real Delta table: a second
run of the same day plans from the stored densities without the probe hour, in fewer calls, and a stored density
that is wildly wrong still lands exactly the archive.

Expected values come from mock_pi's own archive (osipi_dagster_tests/client/expected.py); calls are counted by the
emulator (GET /metrics), not by the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from osipi_dagster.lib.lake import DeltaTableRef, Lake
from osipi_dagster.lib.landing.densities import (
    DENSITIES_SCHEMA,
    DENSITIES_TABLE,
    changed,
    observed_densities,
    remember_densities,
    stored_densities,
)
from osipi_dagster.lib.landing.progress import Progress
from osipi_dagster.lib.landing.recorded import READ_VALUES_PER_CALL, hourly_pages
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster_tests.client.expected import Expected, assert_same
from osipi_dagster_tests.emulator import Emulator

DAY = (datetime(2024, 4, 30, 11, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))
DENSE = 5  # the emulator's ~180,000 values/day vibration tag
SLOW = 7


def served(emulator: Emulator) -> int:
    """HTTP requests the emulator has answered so far."""
    return int(httpx.get(f"{emulator.root}/metrics", timeout=5).json()["requests"])


def run(
    emulator: Emulator, ids: list[str], table: DeltaTableRef, known: Mapping[str, float]
) -> tuple[pl.DataFrame, int]:
    """One range run of the day as the asset does it: read with `known` densities, then store what it observed.
    Returns the values read and the emulator's count of calls for them."""
    before = served(emulator)
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        frames = list(hourly_pages(pi, ids, *DAY, Progress(lambda _: None, "plan"), known))
    calls = served(emulator) - before
    got = pl.concat(frames)
    counts = (
        pl.DataFrame({"web_id": ids})
        .join(got.group_by("web_id").len("rows"), on="web_id", how="left")
        .fill_null(0)
    )
    remember_densities(table, observed_densities(counts, *DAY, datetime.now(UTC)), known)
    return got, calls


@pytest.fixture
def day() -> tuple[list[str], pl.DataFrame]:
    expected = Expected()
    points = [expected.point(i) for i in range(60)]
    return [p.web_id for p in points], expected.recorded(points, *DAY, include_end=False)


def test_second_run_plans_from_stored_densities(
    emulator: Emulator, tmp_path: Path, day: tuple[list[str], pl.DataFrame]
) -> None:
    ids, want = day
    table = Lake(str(tmp_path / "lake")).table(DENSITIES_TABLE)
    assert stored_densities(table, ids) == {}

    first, first_calls = run(emulator, ids, table, {})
    assert_same(first, want)
    stored = stored_densities(table, ids)
    assert set(stored) == set(ids)  # one row per tag, tags without values included (density 0)
    rows = table.to_polars()
    assert rows.height == 60 and rows.schema == DENSITIES_SCHEMA
    dense = want.filter(pl.col("web_id") == ids[DENSE]).height
    assert stored[ids[DENSE]] == pytest.approx(dense / 86_400)

    second, second_calls = run(emulator, ids, table, stored)
    assert_same(second, want)
    assert second.sort("web_id", "timestamp", "ordinal").equals(first.sort("web_id", "timestamp", "ordinal"))
    assert second_calls < first_calls, (second_calls, first_calls)
    # Steady densities are not rewritten: the second run left the table as the first wrote it.
    assert table.version() == 0

    # The plan from stored densities: no window expects more than the per-call budget (the memory bound).
    with PIWebAPIClient(ClientConfig(emulator.api)) as pi:
        pi.seed_densities(stored)
        for group, a, b, _ in pi._recorded_units(ids, *DAY, False, READ_VALUES_PER_CALL):
            expected = sum(stored[w] for w in group) * (b - a).total_seconds()
            assert expected * 1.2 <= READ_VALUES_PER_CALL


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param({DENSE: 1e-4}, id="dense-tag-stored-10000x-too-low"),
        pytest.param({SLOW: 1e3, DENSE: 10.0}, id="stored-densities-10x-and-1000x-too-high"),
    ],
)
def test_wrong_stored_density_still_lands_the_archive(
    emulator: Emulator, tmp_path: Path, day: tuple[list[str], pl.DataFrame], wrong: dict[int, float]
) -> None:
    ids, want = day
    table = Lake(str(tmp_path / "lake")).table(DENSITIES_TABLE)
    truth = {w: n / 86_400 for w, n in want.group_by("web_id").len().iter_rows()}
    known = {w: truth.get(w, 0.0) for w in ids}
    known |= {ids[i]: known[ids[i]] * factor for i, factor in wrong.items()}
    got, _ = run(emulator, ids, table, known)
    assert_same(got, want)
    # Last write wins: the run stored what it observed, so the next run plans from the truth again.
    fixed = stored_densities(table, ids)
    for i in wrong:
        assert fixed[ids[i]] == pytest.approx(truth[ids[i]])


def test_new_tag_without_a_stored_density_is_probed(
    emulator: Emulator, tmp_path: Path, day: tuple[list[str], pl.DataFrame]
) -> None:
    ids, want = day
    table = Lake(str(tmp_path / "lake")).table(DENSITIES_TABLE)
    truth = {w: n / 86_400 for w, n in want.group_by("web_id").len().iter_rows()}
    known = {w: truth.get(w, 0.0) for w in ids if w != ids[DENSE]}  # the dense tag is new
    got, calls = run(emulator, ids, table, known)
    assert_same(got, want)
    # 59 tags in the calls their densities need; the new one: a probe hour, its continuation, then its 23 hours.
    assert calls <= 2 + 2 * 4, calls
    assert stored_densities(table, [ids[DENSE]]) == {ids[DENSE]: pytest.approx(truth[ids[DENSE]])}


def test_only_new_or_really_changed_densities_are_rewritten() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    counts = pl.DataFrame(
        {"web_id": ["new", "steady", "noisy", "doubled", "stopped"], "rows": [5, 7500, 9, 200, 0]}
    )
    observed = observed_densities(counts, at, at + timedelta(hours=1), at)
    known = {"steady": 7400 / 3600, "noisy": 5 / 3600, "doubled": 100 / 3600, "stopped": 7500 / 3600}
    # noisy: 5 -> 9 values in an hour is +80 % but within counting noise; steady: 1.4 %.
    assert changed(observed, known)["web_id"].to_list() == ["new", "doubled", "stopped"]
    with pytest.raises(ValueError, match="positive length"):
        observed_densities(counts, at, at, at)
