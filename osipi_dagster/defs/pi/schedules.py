"""Schedules that keep the PI tables current: each closed hour, the catalogue daily, event frames daily.

All cron expressions are UTC, like the partitions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from osipi_dagster.defs.pi import jobs
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site

# Minutes after the hour closes: late-arriving values (buffered interfaces, PI to PI) usually land by then.
HOURLY_LAG_MINUTES = 10
# Event frames of a day are re-read this many days back so frames in progress at the first pass get their end.
EVENT_FRAME_DAYS_BACK = 2


def event_frame_days(scheduled: datetime, days_back: int = EVENT_FRAME_DAYS_BACK) -> list[str]:
    """Partition keys of the `days_back` closed UTC days before `scheduled`, oldest first."""
    today = scheduled.astimezone(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days_back, 0, -1)]


def site_schedules(
    site: Site = DEFAULT_SITE, site_jobs: dict[str, dg.UnresolvedAssetJobDefinition] | None = None
) -> list[dg.ScheduleDefinition]:
    """The site's three schedules over its jobs (`jobs.site_jobs(site)`, the module's jobs by default); a
    connection may set each cron (`timeseries`, `catalogue`, `event_frames`) and their time zone. The default site
    keeps today's UTC crons and names."""
    by_name = site_jobs or jobs.DEFAULT_JOBS
    ts_job = by_name[jobs.TIMESERIES_JOB]
    cat_job = by_name[jobs.CATALOGUE_JOB]
    ef_job = by_name[jobs.EVENT_FRAMES_JOB]
    ts_cron = site.schedules.get("timeseries")
    timeseries = dg.build_schedule_from_partitioned_job(
        ts_job,
        name=site.job("pi_timeseries_hourly_schedule"),
        # With tag shards (hour × shard partitions) a tick requests one run per shard of the closed hour.
        description="Materialises the hour that just closed (each of its shards), HOURLY_LAG_MINUTES after it closes.",
        minute_of_hour=None if ts_cron else HOURLY_LAG_MINUTES,
        cron_schedule=ts_cron,
        execution_timezone=site.timezone if ts_cron else None,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    catalogue = dg.ScheduleDefinition(
        name=site.job("pi_catalogue_daily_schedule"),
        job=cat_job,
        cron_schedule=site.cron("catalogue", "15 0 * * *"),
        execution_timezone=site.timezone,
        description="Daily SCD2 snapshot of the PI point catalogue and the AF hierarchy.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )

    @dg.schedule(
        name=site.job("pi_event_frames_daily_schedule"),
        job=ef_job,
        cron_schedule=site.cron("event_frames", "30 0 * * *"),
        execution_timezone=site.timezone,
        description="Event frames of yesterday, and the day before so frames that were in progress get closed.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def event_frames(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        tick = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        # run_key includes the tick: the same day is legitimately re-run by the next day's tick.
        return [
            dg.RunRequest(run_key=f"{day}@{tick}", partition_key=day) for day in event_frame_days(scheduled)
        ]

    return [timeseries, catalogue, event_frames]  # type: ignore[list-item]


pi_timeseries_hourly_schedule, pi_catalogue_daily_schedule, pi_event_frames_daily_schedule = site_schedules()
