"""deploy/dagster.production.yaml loads into an instance on a real Postgres: Postgres storages, the queued run
coordinator with the per-connection and per-pool limits, run retries and run monitoring."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from osipi_dagster.devtools.postgres import Postgres


def test_the_production_instance_stores_runs_in_postgres(production_home: Path, postgres: Postgres) -> None:
    import psycopg2

    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        # A launch the code server did not answer goes back to the queue (run retries do not cover launches).
        assert instance.get_concurrency_config().run_queue_config.max_user_code_failure_retries == 3
        run = instance.add_run(
            dg.DagsterRun(job_name="probe", run_id="a" * 32, tags={"osipi/connection": "x"})
        )
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_monitoring_enabled
        limits = {
            lim["key"]: lim
            for lim in instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        }
    assert limits["osipi/connection"]["value"] == {"applyLimitPerUniqueValue": True}
    assert limits["osipi/pool"]["limit"] == 4
    # Read back by an independent client: the run is a row of Postgres's runs table.
    with psycopg2.connect(postgres.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pipeline_name FROM runs WHERE run_id = %s", (run.run_id,))
        assert cur.fetchone() == ("probe",)
