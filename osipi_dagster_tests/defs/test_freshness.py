"""The partition-aware freshness check of pi_timeseries at frozen evaluation times: the latest closed hour must be
materialized by its deadline (:40), whatever else was materialized (a backfill of older hours does not count).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from dagster._core.test_utils import freeze_time

from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.defs.quality.checks import TIMESERIES_DEADLINE_CRON, timeseries_freshness_checks


def evaluate(
    instance: dg.DagsterInstance, resources: dict[str, object], at: datetime
) -> dg.AssetCheckEvaluation:
    """Run the freshness check alone, with the clock frozen at `at`."""
    with freeze_time(at):
        result = dg.materialize(
            [pi_timeseries, *timeseries_freshness_checks],
            resources=resources,
            instance=instance,
            selection=dg.AssetSelection.checks(*timeseries_freshness_checks),
        )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_latest_closed_hour_must_be_present_by_its_deadline(resources: dict[str, object]) -> None:
    assert TIMESERIES_DEADLINE_CRON == "40 * * * *"
    with dg.DagsterInstance.ephemeral() as instance:
        for key in ("2024-05-01-08:00", "2024-05-01-10:00"):  # 09:00 is missing
            assert dg.materialize(
                [pi_timeseries], resources=resources, partition_key=key, instance=instance
            ).success
        # 11:50: the last deadline (11:40) asks for hour 10:00, which is there.
        fresh = evaluate(instance, resources, datetime(2024, 5, 1, 11, 50, tzinfo=UTC))
        assert fresh.passed, fresh.metadata
        # 12:20: hour 11:00 closed, but its deadline (12:40) has not passed: still judged on hour 10:00.
        grace = evaluate(instance, resources, datetime(2024, 5, 1, 12, 20, tzinfo=UTC))
        assert grace.passed
        # 12:45: hour 11:00 is past its deadline and missing: fails, ERROR, although later and earlier hours exist.
        stale = evaluate(instance, resources, datetime(2024, 5, 1, 12, 45, tzinfo=UTC))
        assert not stale.passed and stale.severity == dg.AssetCheckSeverity.ERROR
        # 10:45 on the same day: hour 09:00 is the one due, and it is missing too (a newer hour does not hide it).
        gap = evaluate(instance, resources, datetime(2024, 5, 1, 10, 45, tzinfo=UTC))
        assert not gap.passed
        # Landing hour 11:00 late makes the 12:45 evaluation pass.
        assert dg.materialize(
            [pi_timeseries], resources=resources, partition_key="2024-05-01-11:00", instance=instance
        ).success
        assert evaluate(instance, resources, datetime(2024, 5, 1, 12, 45, tzinfo=UTC)).passed
