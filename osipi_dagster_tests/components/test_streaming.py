"""Each `PIConnection` has its own streaming pieces: a stream asset under its prefix, the checks on it, a report
sensor over its own lake sub-path and a spool resource of its own; a landing in one site's lake is reported by that
site's sensor only, on that site's key. The environment connection keeps today's names.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from osipi_dagster.components.pi_connection import PIConnection
from osipi_dagster.defs.streaming import assets, reporting, sensors
from osipi_dagster.lib.streaming import SPOOL_SCHEMA, Spool, SpoolReader
from osipi_dagster.lib.streaming.lander import Lander

URL = "http://127.0.0.1:9/piwebapi"


def spooled(n: int) -> pl.DataFrame:
    """n good values of one stream, as the listener spools them."""
    now = datetime.now(UTC)
    frame = pl.DataFrame(
        {
            "web_id": ["W1"] * n,
            "timestamp": [datetime(2024, 5, 1, 10, i, tzinfo=UTC) for i in range(n)],
            "ordinal": [0] * n,
            "value": [float(i) for i in range(n)],
            "good": [True] * n,
            "origin": ["channel"] * n,
            "received_at": [now] * n,
            "lag_us": [1_000_000] * n,
        }
    )
    return (
        frame.with_columns(*(pl.lit(None).alias(c) for c in SPOOL_SCHEMA if c not in frame.columns))
        .select(list(SPOOL_SCHEMA))
        .cast(dict(SPOOL_SCHEMA))
    )


def connection(name: str, lake: Path, **extra: object) -> PIConnection:
    return PIConnection.from_attributes(name, {"pi_web_api_url": URL, "lake_uri": str(lake), **extra})


def test_environment_connection_keeps_todays_streaming_names() -> None:
    assert assets.pi_timeseries_stream.key == dg.AssetKey(["pi", "pi_timeseries_stream"])
    assert assets.pi_timeseries_stream.group_names_by_key[assets.STREAM_KEY] == "streaming"
    assert reporting.pi_stream_report_sensor.name == "pi_stream_report_sensor"
    assert reporting.pi_stream_report_sensor.required_resource_keys == {"lake", "spool", "pi"}
    assert sensors.stream_landing_job.name == "pi_stream_landing_job"
    assert assets.pi_timeseries_stream.op.name == sensors.OP_NAME


def test_each_connection_reports_only_its_own_landings(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    site_a = connection("site_a", lake, stream={"directory": str(tmp_path / "spool_a")})
    site_b = connection("site_b", lake, key_prefix=["plants", "b"])
    assert site_a.spool_directory() == str(tmp_path / "spool_a")
    assert site_b.spool_directory() == "./data/spool/site_b"  # the default spool root, one folder per site
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = dg.Definitions.merge(site_a.build_defs(None), site_b.build_defs(None))  # type: ignore[arg-type]
    graph = defs.resolve_asset_graph()
    key_a, key_b = (
        dg.AssetKey(["site_a", "pi_timeseries_stream"]),
        dg.AssetKey(["plants", "b", "pi_timeseries_stream"]),
    )
    assert graph.get(key_a).group_name == "site_a" and graph.get(key_b).group_name == "site_b"
    assert {k.name for k in graph.asset_check_keys if k.asset_key == key_b} == {
        reporting.UNIQUE_KEYS_CHECK,
        reporting.COVERAGE_CHECK,
    }
    assert defs.resolve_job_def("site_b__pi_stream_landing_job").asset_layer.executable_asset_keys == {key_b}
    assert {"site_a_spool", "site_b_spool"} <= set(defs.resources)

    # Site A's lander lands two batches into site A's lake sub-path.
    spool_a = SpoolReader(site_a.spool_directory()).root
    with Spool(spool_a, max_segment_age_s=3600) as spool:
        for n in (3, 4):
            spool.append(spooled(n))
            spool.seal()
    with Lander(site_a.lake_resource().get_lake(), SpoolReader(spool_a), max_batch_bytes=1) as lander:
        while lander.land_once() is not None:
            pass
    assert (lake / "site_a" / "pi_timeseries" / "_delta_log").is_dir()

    resources = {}
    for conn in (site_a, site_b):
        resources |= {
            f"{conn.name}_lake": conn.lake_resource(),
            f"{conn.name}_spool": conn.spool_resource(),
            f"{conn.name}_pi": conn.pi_resource(),
        }
    with dg.instance_for_test() as instance:
        tick_a = defs.resolve_sensor_def("site_a__pi_stream_report_sensor")(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        mats = [e for e in tick_a.asset_events if isinstance(e, dg.AssetMaterialization)]
        assert [m.asset_key for m in mats] == [key_a, key_a]
        assert [m.metadata["values_inserted"].value for m in mats] == [
            3,
            1,
        ]  # the second batch repeats 3 keys
        checks = [e for e in tick_a.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert [(c.asset_key, c.check_name, c.passed) for c in checks] == [
            (key_a, reporting.UNIQUE_KEYS_CHECK, True)
        ]
        tick_b = defs.resolve_sensor_def("site_b__pi_stream_report_sensor")(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        assert not tick_b.asset_events and "no table yet" in str(tick_b.skip_reason)
