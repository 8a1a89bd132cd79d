"""Catalogue and AF snapshot assets: exact contents from both data servers / AF databases, SCD2 history.

Expected values come from mock_pi's model; tables are read back with polars' Delta reader.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
from deltalake import DeltaTable

from osipi_dagster.defs.pi import checks
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster_tests.defs.conftest import TAGS, Model, make_resources, read_table


def test_points_catalogue_covers_both_data_servers(catalogue_lake: Path, model: Model) -> None:
    points = read_table(catalogue_lake, "pi_points")
    assert points.height == TAGS
    assert points["is_current"].all() and points["valid_to"].null_count() == TAGS
    expected = {
        model.catalog.point_at(i).web_id: (name, f"PISRV0{i % 2 + 1}")
        for i, name in enumerate(model.catalog.names)
    }
    assert {w: (n, s) for w, n, s in points.select("web_id", "name", "server").iter_rows()} == expected
    assert dict(points.group_by("server").len().iter_rows()) == {"PISRV01": TAGS // 2, "PISRV02": TAGS // 2}
    special = points.filter(pl.col("name") == "Température #3/A %").row(0, named=True)
    assert special["path"] == "\\\\PISRV01\\Température #3/A %" and special["point_type"] == "Float32"


def test_af_tree_matches_the_emulator(catalogue_lake: Path, model: Model) -> None:
    elements = read_table(catalogue_lake, "af_elements").filter(pl.col("is_current"))
    expected = {
        el.web_id: (el.parent.web_id if el.parent else None, el.path, db.path)
        for db in model.af.databases
        for el in db.elements
    }
    got = {
        w: (p, path, db)
        for w, p, path, db in elements.select("web_id", "parent_web_id", "path", "database").iter_rows()
    }
    assert got == expected
    assert elements["database"].n_unique() == len(model.af.databases) == 2
    # Parent/child: every child's path extends its parent's path by one segment; roots have depth 0.
    parents = elements.select(
        pl.col("web_id").alias("parent_web_id"),
        pl.col("path").alias("parent_path"),
        pl.col("depth").alias("parent_depth"),
    )
    children = elements.join(parents, on="parent_web_id", how="inner")
    assert children.height == elements.filter(pl.col("parent_web_id").is_not_null()).height
    assert (children["depth"] == children["parent_depth"] + 1).all()
    assert all(c.startswith(p + "\\") for c, p in children.select("path", "parent_path").iter_rows())
    assert elements.filter(pl.col("parent_web_id").is_null())["depth"].unique().to_list() == [0]


def test_attributes_resolve_pi_points(catalogue_lake: Path, model: Model) -> None:
    attributes = read_table(catalogue_lake, "af_attributes").filter(pl.col("is_current"))
    elements = read_table(catalogue_lake, "af_elements")
    assert attributes.height > elements.height
    assert set(attributes["element_web_id"].unique().to_list()) <= set(elements["web_id"].to_list())
    with_points = attributes.filter(pl.col("point_web_id").is_not_null())
    assert with_points.height > 0
    for web_id, point_web_id, database in (
        with_points.select("web_id", "point_web_id", "database").head(50).iter_rows()
    ):
        attr = model.af.attribute(web_id)
        assert attr is not None and attr.point is not None
        assert attr.point.web_id == point_web_id
        assert attr.owner.db.path == database
    # Resolved points are catalogued, so attributes join to pi_points and pi_timeseries by web_id.
    points = set(read_table(catalogue_lake, "pi_points")["web_id"].to_list())
    assert set(with_points["point_web_id"].to_list()) <= points


def test_snapshot_reruns_and_changes_keep_scd2_history(
    emulator, catalogue_lake: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(catalogue_lake, lake)
    uri = str(lake / "pi_points")
    version = DeltaTable(uri).version()
    resources = make_resources(emulator.api, lake)

    # An unchanged snapshot commits nothing.
    result = dg.materialize([pi_points], resources=resources)
    assert DeltaTable(uri).version() == version
    md = result.asset_materializations_for_node("pi__pi_points")[0].metadata
    assert md["dagster/row_count"].value == TAGS and md["scd2_unchanged"].value == TAGS
    evaluation = result.get_asset_check_evaluations()[0]
    assert evaluation.check_name == checks.POINTS_UNIQUE_WEB_ID.name and evaluation.passed

    # Pretend yesterday's snapshot knew one tag under another descriptor: today's run versions it.
    renamed = read_table(lake, "pi_points").filter(pl.col("name") == "CDT158")["web_id"].item()
    DeltaTable(uri).update(
        predicate=f"web_id = '{renamed}'", updates={"descriptor": "'old text'", "row_hash": "'yesterday'"}
    )
    before_run = datetime.now(UTC)
    dg.materialize([pi_points], resources=resources)
    history = read_table(lake, "pi_points").filter(pl.col("web_id") == renamed).sort("valid_from")
    assert history["descriptor"].to_list() == ["old text", "Atmospheric Tower OH Vapor"]
    assert history["is_current"].to_list() == [False, True]
    assert history["valid_to"][0] == history["valid_from"][1] and history["valid_from"][1] >= before_run
    # "As of" a moment before the run, the old version is the one that was valid.
    as_of = before_run
    old_view = read_table(lake, "pi_points").filter(
        (pl.col("valid_from") <= as_of) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > as_of))
    )
    assert old_view.height == TAGS
    assert old_view.filter(pl.col("web_id") == renamed)["descriptor"].item() == "old text"


def test_data_server_selection(emulator, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    dg.materialize([pi_points], resources=make_resources(emulator.api, lake, data_servers=["pisrv02"]))
    points = read_table(lake, "pi_points")
    assert points["server"].unique().to_list() == ["PISRV02"] and points.height == TAGS // 2

    result = dg.materialize(
        [pi_points],
        resources=make_resources(emulator.api, lake, data_servers=["NOPE"]),
        raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "PI_DATA_SERVERS" in message and "NOPE" in message and "PISRV01" in message
