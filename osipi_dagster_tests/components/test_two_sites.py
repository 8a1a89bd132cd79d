"""Two `PIConnection`s in one Dagster instance against two emulators (different seeds and tag counts): each site's
tables, under its own lake sub-path, hold exactly its emulator's rows; keys, groups, pools and jobs are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from mock_pi.archive import Archive
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from osipi_dagster.components.pi_connection import PIConnection
from osipi_dagster_tests.emulator import Emulator

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
HOUR = "2024-05-01-10:00"
START, END = datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC)
TAG_FILTER = "U1*-TI*"
SITES = {"site_a": (7, 300), "site_b": (99, 450)}
US = 1_000_000


def expected_recorded(seed: int, tags: int) -> pl.DataFrame:
    """(web_id, n) of every archive event in [START, END) of the tags the filter selects, from mock_pi's model."""
    config = EmulatorConfig(seed=seed, tags=tags, clock=f"frozen:{NOW.isoformat()}")
    catalog = Catalog(seed, tags, config.data_servers)
    archive = Archive(seed, lambda: int(NOW.timestamp()) * US)
    pattern = TAG_FILTER.replace("*", ".*")
    rows = []
    for i, name in enumerate(catalog.names):
        if not pl.Series([name]).str.contains(f"(?i)^{pattern}$").item():
            continue
        point = catalog.point_at(i)
        ts = [
            t for t in archive.recorded(point, int(START.timestamp()) * US, int(END.timestamp()) * US).ts_us
        ]
        n = sum(1 for t in ts if t < int(END.timestamp()) * US)
        if n:
            rows.append((point.web_id, n))
    return pl.DataFrame(rows, schema={"web_id": pl.Utf8, "n": pl.UInt32}, orient="row").sort("web_id")


def test_two_connections_land_each_emulators_rows_in_their_own_tables(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    sites = {}
    for name, (seed, tags) in SITES.items():
        emu = emulator_factory(
            "--seed", str(seed), "--tags", str(tags), "--clock", f"frozen:{NOW.isoformat()}"
        )
        sites[name] = PIConnection.from_attributes(
            name,
            {
                "pi_web_api_url": emu.api,
                "tag_filter": TAG_FILTER,
                "lake_uri": str(lake),
                "start_date": "2024-04-01",
            },
        )
    defs = dg.Definitions.merge(*(c.build_defs(None) for c in sites.values()))  # type: ignore[arg-type]
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for name in SITES:
        assert {f"{name}/pi_points", f"{name}/pi_timeseries", f"{name}/event_frames"} <= keys
        node = graph.get(dg.AssetKey([name, "pi_timeseries"]))
        assert node.group_name == name
        assert node.pools == {f"pi_web_api_{name}"}
        # Its own freshness checks and sensor, on its own keys.
        sensor = defs.resolve_sensor_def(f"{name}__pi_freshness_checks_sensor")
        assert {k.asset_key for k in sensor.asset_selection.resolve_checks(graph)} == {  # type: ignore[union-attr]
            dg.AssetKey([name, "pi_timeseries"])
        }

    with dg.instance_for_test() as instance:
        for name in SITES:
            result = defs.resolve_job_def(f"{name}__pi_ingest_job").execute_in_process(
                instance=instance, partition_key=HOUR
            )
            assert result.success
        # Each site's late-data sensor audits its own landed hour against its own emulator: nothing changed.
        for name, conn in sites.items():
            sensor = defs.resolve_sensor_def(f"{name}__pi_late_data_sensor")
            context = dg.build_sensor_context(
                instance=instance,
                resources={f"{name}_pi": conn.pi_resource(), f"{name}_lake": conn.lake_resource()},
            )
            tick = sensor.evaluate_tick(context)
            assert not tick.run_requests
            assert "1 hours audited against PI, no change found" in str(tick.skip_message), tick

    for name, (seed, tags) in SITES.items():
        table = pl.read_delta(str(lake / name / "pi_timeseries"))
        landed = table.group_by("web_id").agg(pl.len().alias("n")).sort("web_id")
        expected = expected_recorded(seed, tags)
        assert expected.height > 0
        assert landed.equals(expected), name
        points = pl.read_delta(str(lake / name / "pi_points"))
        assert points["web_id"].n_unique() == points.height > 0
    # The emulators answer differently, so a site landing the other's data would fail the equality above.
    assert not expected_recorded(*SITES["site_a"]).equals(expected_recorded(*SITES["site_b"]))
