"""The code location loads without any environment, and its shape is what operators and the demo rely on.

Also covers the resources' environment handling, schedules and the maintenance job (on a real tmp lake).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from osipi_dagster.defs.lake.maintenance import lake_maintenance_job
from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi import schedules
from osipi_dagster.defs.pi.partitions import start_date_from_env
from osipi_dagster.defs.pi.reporting import markdown_preview
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.lib.landing import pi_name_filter_regex
from osipi_dagster.lib.settings import SettingsError

PI_ASSETS = [
    "pi_points",
    "af_elements",
    "af_attributes",
    "event_frames",
    "event_frame_attributes",
    "pi_timeseries",
]


# Run in a fresh interpreter with an empty environment, from an empty directory: the load under test is the first
# in its process and sees no variable (no PI_*, OSIPI_*, DAGSTER_HOME) and no file the checkout might hold.
DESCRIBE_CLEAN_LOAD = """
import json, os, warnings
warnings.simplefilter("ignore")
import dagster as dg
from osipi_dagster.definitions import defs as load

defs = load()
dg.Definitions.validate_loadable(defs)
graph = defs.resolve_asset_graph()
assets = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    policy = node.backfill_policy
    assets[key.to_user_string()] = {
        "group": node.group_name,
        "pool": defs.resolve_assets_def(key).op.pool,
        "kinds": sorted(node.kinds),
        "parents": sorted(k.to_user_string() for k in node.parent_keys),
        "timezone": getattr(node.partitions_def, "timezone", None),
        "backfill": [policy.policy_type.value, policy.max_partitions_per_run] if policy else None,
    }
jobs = {}
for name in ("pi_ingest_job", "pi_catalogue_job", "pi_timeseries_job", "pi_event_frames_job", "lake_maintenance_job"):
    jobs[name] = sorted(k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys)
print(json.dumps({
    "environ": sorted(k for k in os.environ if k.startswith(("PI_", "OSIPI_", "DAGSTER"))),
    "assets": assets, "jobs": jobs, "resources": sorted(defs.resources),
}))
"""


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from osipi_dagster.definitions import defs as load

    return load() if callable(load) and not isinstance(load, dg.Definitions) else load


def test_definitions_load_and_validate_without_any_environment(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE_CLEAN_LOAD],
        env={},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["environ"] == []
    assets = loaded["assets"]
    assert {f"pi/{name}" for name in PI_ASSETS} <= set(assets)
    for name in PI_ASSETS:
        node = assets[f"pi/{name}"]
        assert node["group"] == "pi" and node["pool"] == "pi_web_api"
        assert {"deltalake", "polars"} <= set(node["kinds"])
    ts = assets["pi/pi_timeseries"]
    assert "pi/pi_points" in ts["parents"]
    assert ts["timezone"] == "UTC"
    assert ts["backfill"] == ["MULTI_RUN", 24]
    assert set(loaded["jobs"]) == {
        "pi_ingest_job", "pi_catalogue_job", "pi_timeseries_job", "pi_event_frames_job", "lake_maintenance_job",
    }  # fmt: skip
    assert {k.split("/")[-1] for k in loaded["jobs"]["pi_ingest_job"]} == {
        "pi_points", "af_elements", "af_attributes", "pi_timeseries",
    }  # fmt: skip
    assert set(loaded["resources"]) >= {"pi", "lake"}


def test_resources_from_env_use_envvars_and_skip_unset() -> None:
    resource = PIWebAPIResource.from_env({"PI_WEB_API_URL": "https://pi/piwebapi", "PI_PASSWORD": "s3cret"})
    # Set variables become EnvVar references (resolved at launch; the secret never enters run config);
    # unset optional ones are not referenced at all, so launching does not fail on them.
    assert isinstance(resource.password, dg.EnvVar) and resource.password == "PI_PASSWORD"
    assert isinstance(resource.pi_web_api_url, dg.EnvVar)
    assert resource.username is None and resource.auth_method == "anonymous"  # typed default
    assert isinstance(PIWebAPIResource.from_env({}).pi_web_api_url, dg.EnvVar)
    lake = LakeResource.from_env({})
    assert lake.root_uri == "./data/lake" and lake.storage_options_json is None


def test_resource_settings_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PI_PASSWORD"):
        PIWebAPIResource(pi_web_api_url="https://pi/piwebapi", auth_method="basic", username="u").settings()
    with pytest.raises(ValueError, match="verify_tls"):  # typed field: refused when configured
        PIWebAPIResource(pi_web_api_url="https://pi/piwebapi", verify_tls="maybe")
    cfg = PIWebAPIResource(pi_web_api_url="https://pi/piwebapi/", data_servers=["A", "B"]).client_config()
    assert cfg.verify_tls is True and cfg.base_url == "https://pi/piwebapi"
    s = PIWebAPIResource(
        pi_web_api_url="https://pi/piwebapi", data_servers=["A", "B"], verify_tls=False
    ).settings()
    assert s.data_servers == ["A", "B"] and s.verify_tls is False
    lake = LakeResource(
        root_uri=str(tmp_path / "l"), storage_options_json='{"AWS_REGION": "eu-west-1"}'
    ).get_lake()
    assert lake.storage_options == {"AWS_REGION": "eu-west-1"}


def test_start_date_default_and_override() -> None:
    assert start_date_from_env({}) == date(2024, 1, 1)
    assert start_date_from_env({"OSIPI_START_DATE": "2023-06-01"}) == date(2023, 6, 1)
    with pytest.raises(SettingsError, match="OSIPI_START_DATE"):
        start_date_from_env({"OSIPI_START_DATE": "June"})


def test_pi_name_filter() -> None:
    import re

    rx = re.compile(pi_name_filter_regex("u100-t?0*"))
    assert rx.match("U100-TI00032.PV") and not rx.match("U100-FIC00021.PV") and not rx.match("XU100-TI0")
    assert re.compile(pi_name_filter_regex("*")).match("Température #3/A %")
    assert re.compile(pi_name_filter_regex("BA:TEMP.1")).match("BA:TEMP.1")
    assert not re.compile(pi_name_filter_regex("BA:TEMP.1")).match("BA:TEMPX1")


def test_hourly_schedule_requests_the_hour_that_just_closed(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("pi_timeseries_hourly_schedule")
    assert schedule.cron_schedule == "10 * * * *" and schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2024, 5, 1, 13, 10, tzinfo=UTC)
        )
        data = schedule.evaluate_tick(ctx)
    assert [r.partition_key for r in data.run_requests] == ["2024-05-01-12:00"]


def test_event_frame_schedule_rereads_two_days() -> None:
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2024, 5, 3, 0, 30, tzinfo=UTC)
        )
        requests = schedules.pi_event_frames_daily_schedule(ctx)
    assert [r.partition_key for r in requests] == ["2024-05-01", "2024-05-02"]
    assert len({r.run_key for r in requests}) == 2


def test_markdown_preview() -> None:
    frame = pl.DataFrame({"a": [1, None], "b": [["x", "y"], []], "c": ["p|q", "z" * 80]})
    md = markdown_preview(frame)
    assert md.splitlines()[0] == "| a | b | c |"
    assert md.splitlines()[2] == "| 1 | x, y | p\\|q |"
    assert md.splitlines()[3].endswith("...|") or "..." in md.splitlines()[3]


def test_maintenance_job_compacts_and_vacuums(tmp_path: Path) -> None:
    from osipi_dagster.lib.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    ts = lake.table("pi_timeseries")
    for hour in range(3):
        start = datetime(2024, 5, 1, hour, tzinfo=UTC)
        frame = pl.DataFrame(
            {"web_id": ["A", "B"], "timestamp": [start, start], "date": [start.date()] * 2},
            schema={"web_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC"), "date": pl.Date},
        )
        ts.append(frame, partition_by=["date"])  # one small file per write, all in one date partition
    files_before = ts.table_stats()["files"]
    result = lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource(root_uri=str(tmp_path / "lake"))}
    )
    summary = result.output_for_node("maintain_lake_tables")
    assert set(summary) == {"pi_timeseries"}
    assert summary["pi_timeseries"]["files_before"] == files_before == 3
    assert summary["pi_timeseries"]["files_after"] == 1  # one date partition, z-ordered into one file
    assert pl.read_delta(ts.uri).height == 6
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observations) == 1
    refused = lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource(root_uri=str(tmp_path / "lake"))},
        run_config={
            "ops": {"maintain_lake_tables": {"config": {"retention_hours": 0, "vacuum_dry_run": True}}}
        },
        raise_on_error=False,
    )
    # retention 0 must be refused (enforced retention) with a clear error rather than silently breaking readers.
    assert not refused.success
