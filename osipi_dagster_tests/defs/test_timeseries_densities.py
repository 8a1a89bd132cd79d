"""pi_timeseries keeps the tag densities it observed (pi_read_densities) and plans its next range run from them:
the second run of the same range reads without the probe hour, in fewer calls, and lands the same rows.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.landing.densities import DENSITIES_TABLE
from osipi_dagster_tests.defs.conftest import TAG_FILTER, Model, read_table
from osipi_dagster_tests.defs.test_timeseries import hour, keys, stable

HOURS = ("2024-05-01-00:00", "2024-05-01-11:00")


def run_range(resources: dict[str, object]) -> int:
    """One range run (what BackfillPolicy.multi_run hands the asset); its HTTP calls."""
    result = dg.materialize(
        [pi_timeseries],
        resources=resources,
        tags={"dagster/asset_partition_range_start": HOURS[0], "dagster/asset_partition_range_end": HOURS[1]},
    )
    assert result.success
    return int(result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata["http_calls"].value)


def test_second_range_run_plans_from_stored_densities(
    resources: dict[str, object], lake: Path, model: Model
) -> None:
    start, end = hour(HOURS[0])[0], hour(HOURS[1])[1]
    want = model.recorded(TAG_FILTER, start, end).sort("web_id", "ts_us")
    first_calls = run_range(resources)
    first = read_table(lake, "pi_timeseries")
    assert keys(first).equals(want)
    densities = read_table(lake, DENSITIES_TABLE)
    tags = model.tag_indices(TAG_FILTER)
    assert densities.height == len(tags) == densities["web_id"].n_unique()  # one row per tag of the run
    per_hour = want.group_by("web_id").len().with_columns(pl.col("len") / 12.0)
    got = densities.join(per_hour, on="web_id", how="left").with_columns(pl.col("len").fill_null(0.0))
    assert (got["values_per_hour"] == got["len"]).all()

    second_calls = run_range(resources)
    assert keys(read_table(lake, "pi_timeseries")).equals(want)
    assert stable(read_table(lake, "pi_timeseries")).equals(stable(first))
    assert second_calls < first_calls, (second_calls, first_calls)
