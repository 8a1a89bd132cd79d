"""Schedules that keep the PI tables current: each closed hour, the catalogue daily, event frames daily.

All cron expressions are UTC, like the partitions.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from osipi_dagster.defs.pi import jobs

# Minutes after the hour closes: late-arriving values (buffered interfaces, PI to PI) usually land by then.
HOURLY_LAG_MINUTES = 10
# Event frames of a day are re-read this many days back so frames in progress at the first pass get their end.
EVENT_FRAME_DAYS_BACK = 2

pi_timeseries_hourly_schedule = dg.build_schedule_from_partitioned_job(
    jobs.pi_timeseries_job,
    name="pi_timeseries_hourly_schedule",
    description="Materialises the hour that just closed, HOURLY_LAG_MINUTES after it closes.",
    minute_of_hour=HOURLY_LAG_MINUTES,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

pi_catalogue_daily_schedule = dg.ScheduleDefinition(
    name="pi_catalogue_daily_schedule",
    job=jobs.pi_catalogue_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    description="Daily SCD2 snapshot of the PI point catalogue and the AF hierarchy.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def event_frame_days(scheduled: datetime, days_back: int = EVENT_FRAME_DAYS_BACK) -> list[str]:
    """Partition keys of the `days_back` closed UTC days before `scheduled`, oldest first."""
    today = scheduled.astimezone(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days_back, 0, -1)]


@dg.schedule(
    name="pi_event_frames_daily_schedule",
    job=jobs.pi_event_frames_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    description="Event frames of yesterday, and the day before so frames that were in progress get closed.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def pi_event_frames_daily_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    tick = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    # run_key includes the tick: the same day is legitimately re-run by the next day's tick.
    return [dg.RunRequest(run_key=f"{day}@{tick}", partition_key=day) for day in event_frame_days(scheduled)]
