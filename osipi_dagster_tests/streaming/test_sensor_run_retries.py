"""The landing sensor leaves a failed run to Dagster's run retries (dagster.yaml run_retries): while Dagster will
retry it, the sensor requests nothing; once Dagster gives up, it re-requests the segments still waiting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.defs.streaming.sensors import BATCH_TAG, pi_stream_landing_sensor, stream_landing_job
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster_tests.streaming.test_defs import spooled, write_segments

# The tag Dagster puts on a failed run when run retries are enabled: whether its daemon will retry it.
WILL_RETRY_TAG = "dagster/will_retry"


def values(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "web_id": ["W1"] * n,
            "timestamp": [datetime(2024, 5, 1, 10, i, tzinfo=UTC) for i in range(n)],
            "ordinal": [0] * n,
            "value": [float(i) for i in range(n)],
            "good": [True] * n,
        }
    ).with_columns(
        *(
            pl.lit(None).alias(c)
            for c in VALUES_SCHEMA
            if c not in ("web_id", "timestamp", "ordinal", "value", "good")
        )
    )


def tick(instance: dg.DagsterInstance, cursor: str | None, res: dict[str, object]) -> dg.SensorResult:
    return pi_stream_landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=res))


def test_a_failed_run_dagster_will_retry_is_left_to_dagster(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    write_segments(spool_dir, [spooled(values(3)), spooled(values(2))])
    res = {"spool": SpoolResource(directory=str(spool_dir))}
    with dg.instance_for_test() as instance:
        first = tick(instance, None, res)
        [req] = first.run_requests
        # The batch's run failed and Dagster marked it for a run retry (which copies the run's tags).
        failed = instance.add_run(
            dg.DagsterRun(
                job_name=stream_landing_job.name,
                run_id="b" * 32,
                status=dg.DagsterRunStatus.FAILURE,
                tags={**req.tags, WILL_RETRY_TAG: "true"},
            )
        )
        assert failed.is_complete_and_waiting_to_retry
        waiting = tick(instance, first.cursor, res)
        assert waiting.run_requests == []
        assert "2 segments waiting for their requested run or Dagster's retry of it" in str(
            waiting.skip_reason.skip_message  # type: ignore[union-attr]
        )
        # Dagster's retries are spent: the segments still waiting are the sensor's to request again.
        instance.add_run_tags(failed.run_id, {WILL_RETRY_TAG: "false"})
        [again] = tick(instance, waiting.cursor, res).run_requests
        assert again.run_key == f"stream:{req.tags[BATCH_TAG]}#retry1"
        assert again.run_config == req.run_config
