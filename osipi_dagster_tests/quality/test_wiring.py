"""The quality wiring in the loaded code location: sensors, schema-drift checks on every PI asset, the
partition-aware freshness check, and per-asset freshness policies winning over the platform default.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from osipi_dagster.defs.quality.checks import TIMESERIES_DEADLINE_CRON

PI_ASSETS = [
    "pi_points",
    "af_elements",
    "af_attributes",
    "event_frames",
    "event_frame_attributes",
    "pi_timeseries",
]


def test_quality_definitions_load() -> None:
    from osipi_dagster.definitions import defs as load

    defs = load()
    dg.Definitions.validate_loadable(defs)
    names = {s.name for s in defs.sensors}
    assert {
        "pi_late_data_sensor", "pi_run_failure_alerts", "pi_check_failure_alerts", "pi_freshness_checks_sensor",
    } <= names  # fmt: skip
    late = defs.resolve_sensor_def("pi_late_data_sensor")
    assert late.default_status == dg.DefaultSensorStatus.RUNNING and late.minimum_interval_seconds == 900
    assert {"pi", "lake"} <= late.required_resource_keys
    for alerts in ("pi_run_failure_alerts", "pi_check_failure_alerts"):
        assert "alerts" in defs.resolve_sensor_def(alerts).required_resource_keys
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    assert {(a, "column_schema_change") for a in PI_ASSETS} <= checks
    assert ("pi_timeseries", "freshness_check") in checks
    assert TIMESERIES_DEADLINE_CRON == "40 * * * *"
    # Per-asset policies win over the platform default (36 h).
    ts = graph.get(dg.AssetKey(["pi", "pi_timeseries"])).freshness_policy
    points = graph.get(dg.AssetKey(["pi", "pi_points"])).freshness_policy
    assert ts.fail_window.to_timedelta() == timedelta(hours=3)
    assert points.fail_window.to_timedelta() == timedelta(hours=30)
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    blocking = [
        c for c in defs.resolve_assets_def(dg.AssetKey(["pi", "pi_timeseries"])).check_specs if c.blocking
    ]
    assert [c.name for c in blocking] == ["unique_keys"] and "pi_timeseries" in specs
