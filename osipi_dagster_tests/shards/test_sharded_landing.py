"""pi_timeseries with tag shards against the shared emulator: the shards of an hour together equal the unsharded
hour row for row, a shard run owns exactly its tags' rows, reruns change nothing, and a table laid out for another
shard count is refused with the fix.

Tables are read back with deltalake's own pyarrow reader (not the lake writer's polars scan).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.defs.pi.site import Site
from osipi_dagster.defs.pi.timeseries import timeseries_asset
from osipi_dagster.lib.landing.shards import SHARDS_PROPERTY, main, shard_of
from osipi_dagster.lib.landing.tables import SHARDED_TIMESERIES_SCHEMA, TIMESERIES_SCHEMA
from osipi_dagster_tests.defs.conftest import TAG_FILTER, make_resources
from osipi_dagster_tests.emulator import Emulator

HOUR = "2024-05-01-09:00"
SHARDS = 4
sharded = timeseries_asset(Site(tag_shards=SHARDS))
unsharded = timeseries_asset(Site(tag_shards=1))


def read(lake: Path) -> pl.DataFrame:
    frame = pl.from_arrow(DeltaTable(str(lake / "pi_timeseries")).to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Everything a run lands but its ingestion time and shard, in a canonical order."""
    return frame.drop("ingested_at", "shard", strict=False).sort("web_id", "timestamp", "ordinal")


def run(asset: dg.AssetsDefinition, resources: dict[str, object], key: str, **kw: object):
    return dg.materialize([asset], resources=resources, partition_key=key, **kw)  # type: ignore[arg-type]


def test_partitions_are_hour_by_shard_and_one_run_each() -> None:
    parts = sharded.partitions_def
    assert isinstance(parts, dg.MultiPartitionsDefinition)
    assert [d.name for d in parts.partitions_defs] == ["hour", "shard"]
    assert parts.get_partitions_def_for_dimension("shard").get_partition_keys() == ["0", "1", "2", "3"]
    assert sharded.backfill_policy == dg.BackfillPolicy.multi_run(1)
    # Unsharded keeps today's hourly keys and 24-hour backfill runs.
    assert isinstance(unsharded.partitions_def, dg.HourlyPartitionsDefinition)
    assert unsharded.backfill_policy == dg.BackfillPolicy.multi_run(24)
    assert sharded.key == unsharded.key == dg.AssetKey(["pi", "pi_timeseries"])


@pytest.mark.parametrize("tag_filter", [TAG_FILTER, "*"])
def test_four_shards_of_an_hour_equal_the_unsharded_hour(
    emulator: Emulator, lake: Path, tmp_path: Path, tag_filter: str
) -> None:
    # With a tag filter a shard run owns its shard's web ids; with "*" its whole shard partition.
    resources = make_resources(emulator.api, lake, tag_filter=tag_filter)
    plain_lake = tmp_path / "plain"
    shutil.copytree(lake, plain_lake)
    plain_resources = make_resources(emulator.api, plain_lake, tag_filter=tag_filter)
    plain_result = run(unsharded, plain_resources, HOUR)
    results = [run(sharded, resources, f"{HOUR}|{s}") for s in range(SHARDS)]

    plain, shards = read(plain_lake), read(lake)
    assert plain.height > 500
    assert comparable(shards).equals(comparable(plain))
    assert shards.columns == list(SHARDED_TIMESERIES_SCHEMA) and plain.columns == list(TIMESERIES_SCHEMA)
    # Every row sits in its tag's shard, and every shard had tags.
    expected = [str(shard_of(w, SHARDS)) for w in shards["web_id"].to_list()]
    assert shards["shard"].to_list() == expected
    assert sorted(shards["shard"].unique().to_list()) == ["0", "1", "2", "3"]
    table = DeltaTable(str(lake / "pi_timeseries"))
    assert table.metadata().partition_columns == ["date", "shard"]
    assert table.metadata().configuration[SHARDS_PROPERTY] == str(SHARDS)
    # Each run reports its shard's tags and values only.
    values = [
        r.asset_materializations_for_node("pi__pi_timeseries")[0].metadata["values"].value for r in results
    ]
    per_shard = shards.group_by("shard").len().sort("shard")["len"].to_list()
    mds = [r.asset_materializations_for_node("pi__pi_timeseries")[0].metadata for r in results]
    assert [(md["shard"].value, md["tag_shards"].value) for md in mds] == [
        (str(s), SHARDS) for s in range(SHARDS)
    ]
    assert values == per_shard and sum(values) == plain.height
    requested = [
        r.asset_materializations_for_node("pi__pi_timeseries")[0].metadata["tags_requested"].value
        for r in results
    ]
    plain_md = plain_result.asset_materializations_for_node("pi__pi_timeseries")[0].metadata
    assert sum(requested) == plain_md["tags_requested"].value

    # The checks run per shard on its tags: completeness against PI's counts passes in every shard, and each
    # check's figures (offending tags, tags compared, PI's and the lake's counts) add up to the unsharded run's.
    figures = ("offending", "tags_compared", "pi_count", "lake_count", "mismatching_tags")

    def checked(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], int]:
        return {
            (e.check_name, k): int(e.metadata[k].value)  # type: ignore[arg-type]
            for e in result.get_asset_check_evaluations()
            for k in figures
            if k in e.metadata
        }

    per_shard_checks = [checked(r) for r in results]
    whole = checked(plain_result)
    assert {("complete_vs_pi", "pi_count"), ("unique_keys", "offending")} <= set(whole)
    assert whole[("complete_vs_pi", "pi_count")] > 500
    assert {k: sum(c[k] for c in per_shard_checks) for k in whole} == whole
    for r in results:
        assert {e.check_name: e.passed for e in r.get_asset_check_evaluations()}["complete_vs_pi"]


def test_rerunning_a_shard_hour_changes_nothing_and_touches_only_its_shard(
    resources: dict[str, object], lake: Path
) -> None:
    for s in range(SHARDS):
        run(sharded, resources, f"{HOUR}|{s}")
    before = read(lake)
    run(sharded, resources, f"{HOUR}|2")
    after = read(lake)
    assert comparable(after).equals(comparable(before))
    rerun = after.filter(pl.col("shard") == "2")
    others = after.filter(pl.col("shard") != "2")
    assert rerun["ingested_at"].min() > before["ingested_at"].max()
    assert others.sort("web_id", "timestamp", "ordinal").equals(
        before.filter(pl.col("shard") != "2").sort("web_id", "timestamp", "ordinal")
    )


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None and failure.description is not None
    return failure.description


def test_a_table_laid_out_for_another_shard_count_is_refused_until_resharded(
    resources: dict[str, object], lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(unsharded, resources, HOUR)
    landed = read(lake)
    uri = str(lake / "pi_timeseries")
    version = DeltaTable(uri).version()
    message = failure_of(run(sharded, resources, f"{HOUR}|0", raise_on_error=False))
    assert "laid out for tag_shards=1 (partitioned by ['date'])" in message
    assert f"python -m osipi_dagster.lib.landing.shards {uri} 4" in message
    assert DeltaTable(uri).version() == version  # refused before anything was written

    main([uri, str(SHARDS)])  # the command the message names
    assert f"resharded {uri} for tag_shards=4: {landed.height} rows rewritten" in capsys.readouterr().out
    resharded = read(lake)
    assert comparable(resharded).equals(comparable(landed))
    assert resharded["shard"].to_list() == [str(shard_of(w, SHARDS)) for w in resharded["web_id"].to_list()]
    # The resharded table takes shard runs (and a rerun changes nothing), and refuses the old count.
    run(sharded, resources, f"{HOUR}|1")
    assert comparable(read(lake)).equals(comparable(landed))
    message = failure_of(run(unsharded, resources, HOUR, raise_on_error=False))
    assert "laid out for tag_shards=4 (partitioned by ['date', 'shard'])" in message
    eight = timeseries_asset(Site(tag_shards=8))
    assert "laid out for tag_shards=4" in failure_of(run(eight, resources, f"{HOUR}|7", raise_on_error=False))
