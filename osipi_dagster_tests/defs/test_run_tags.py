"""Every run of a connection's jobs carries its connection and pool tags, so the production run queue's
`tag_concurrency_limits` (deploy/dagster.production.yaml) cap each connection and each PI pool separately, for runs
that schedules, the late-data sensors and the derived reads launch as much as for backfills.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from osipi_dagster.components.pi_connection import PIConnection
from osipi_dagster.defs.pi.derived import build_derived_defs
from osipi_dagster.defs.pi.jobs import site_jobs
from osipi_dagster.defs.pi.names import CONNECTION_TAG, POOL_TAG
from osipi_dagster.lib.settings import DerivedSettings

ROOT = Path(__file__).resolve().parents[2]


def job_tags(defs: dg.Definitions) -> dict[str, dict[str, str]]:
    """{job name: the tags its runs get} of the definitions' asset jobs."""
    return {job.name: dict(job.tags or {}) for job in defs.jobs or []}


def test_default_connection_jobs_carry_connection_and_pool_tags() -> None:
    tags = job_tags(dg.Definitions(jobs=list(site_jobs().values())))
    assert set(tags) == {"pi_ingest_job", "pi_catalogue_job", "pi_timeseries_job", "pi_event_frames_job"}
    for name, run_tags in tags.items():
        assert run_tags[CONNECTION_TAG] == "default", name
        assert run_tags[POOL_TAG] == "pi_web_api", name


def test_a_yaml_connection_tags_its_runs_with_its_own_name_and_pool() -> None:
    site = PIConnection.from_attributes(
        "site_b", {"pi_web_api_url": "https://pi-b.example.com/piwebapi", "pool": "pi_b"}
    ).site()
    for job in site_jobs(site).values():
        assert dict(job.tags) == {CONNECTION_TAG: "site_b", POOL_TAG: "pi_b"}, job.name


def test_derived_reads_job_is_tagged_like_the_connections_other_jobs() -> None:
    default = build_derived_defs(DerivedSettings(interpolated_interval="1m"))
    assert list(job_tags(default).values()) == [{CONNECTION_TAG: "default", POOL_TAG: "pi_web_api"}]
    connection = PIConnection.from_attributes(
        "site_b",
        {
            "pi_web_api_url": "https://pi-b.example.com/piwebapi",
            "pool": "pi_b",
            "derived": {"interpolated_interval": "1m"},
        },
    )
    jobs = job_tags(connection.build_defs(None))  # type: ignore[arg-type]  # the context is not used
    # Every job that calls PI (the stream landing job only moves the spool into the lake).
    calling_pi = {name: tags for name, tags in jobs.items() if "stream_landing" not in name}
    assert any("derived" in name for name in calling_pi), jobs
    assert all(tags == {CONNECTION_TAG: "site_b", POOL_TAG: "pi_b"} for tags in calling_pi.values()), jobs


def test_production_queue_limits_on_the_tags_the_jobs_set() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "dagster.production.yaml").read_text())
    limited = {limit["key"] for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert {CONNECTION_TAG, POOL_TAG} <= limited
