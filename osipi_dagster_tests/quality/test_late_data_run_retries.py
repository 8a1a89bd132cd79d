"""The late-data sensor leaves a failed repair run to Dagster's run retries: a repair whose run Dagster will retry
stays in flight; once Dagster gives up (or a run is canceled), the next request is the sensor's."""

from __future__ import annotations

import time

import dagster as dg

from osipi_dagster.defs.pi.names import REPAIR_KEY_TAG
from osipi_dagster.defs.quality.late_data import settle

# The tag Dagster puts on a failed run when run retries are enabled: whether its daemon will retry it.
WILL_RETRY_TAG = "dagster/will_retry"


def test_settle_waits_for_dagsters_run_retry() -> None:
    now = time.time()
    entry = {
        "after": 7,
        "attempt": 0,
        "run_key": "late-data:timeseries:2024-05-01-10:00:7:0",
        "requested_at": now,
    }
    with dg.instance_for_test() as instance:
        run = instance.add_run(
            dg.DagsterRun(
                job_name="pi_timeseries_job",
                run_id="c" * 32,
                status=dg.DagsterRunStatus.FAILURE,
                tags={REPAIR_KEY_TAG: entry["run_key"], WILL_RETRY_TAG: "true"},
            )
        )
        still, retry = settle(instance, {"2024-05-01-10:00": entry}, {"2024-05-01-10:00": 7}, now)
        assert (still, retry) == ({"2024-05-01-10:00": entry}, {})
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "false"})
        still, retry = settle(instance, {"2024-05-01-10:00": entry}, {"2024-05-01-10:00": 7}, now)
        assert (still, retry) == ({}, {"2024-05-01-10:00": 1})
        # A newer materialization of the partition means the repair is done, whatever its runs did.
        assert settle(instance, {"2024-05-01-10:00": entry}, {"2024-05-01-10:00": 8}, now) == ({}, {})
