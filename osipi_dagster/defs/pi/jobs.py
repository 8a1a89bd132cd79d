"""Asset jobs for PI data: the main ingest job and the per-cadence jobs the schedules launch.

Selections are by asset key so this module holds only jobs (the defs loader collects module-level objects).
"""

from __future__ import annotations

import dagster as dg

from osipi_dagster.defs.pi.names import (
    ATTRIBUTES_KEY,
    CATALOGUE_JOB,
    CONNECTION_TAG,
    DEFAULT_CONNECTION,
    EF_ATTRIBUTES_KEY,
    ELEMENTS_KEY,
    EVENT_FRAMES_JOB,
    EVENT_FRAMES_KEY,
    INGEST_JOB,
    POINTS_KEY,
    POOL_TAG,
    TIMESERIES_JOB,
    TIMESERIES_KEY,
)
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site


def run_tags(site: Site) -> dict[str, str]:
    """The tags every run of the site's jobs carries (schedules, sensors and repairs launch those jobs)."""
    return {CONNECTION_TAG: site.name or DEFAULT_CONNECTION, POOL_TAG: site.pool}


def site_jobs(site: Site = DEFAULT_SITE) -> dict[str, dg.UnresolvedAssetJobDefinition]:
    """The site's jobs by their default name (ingest, catalogue, time series, event frames), their runs tagged with
    the connection and its pool."""
    tags = run_tags(site)
    catalogue = dg.AssetSelection.assets(*(site.key(k) for k in (POINTS_KEY, ELEMENTS_KEY, ATTRIBUTES_KEY)))
    timeseries = dg.AssetSelection.assets(site.key(TIMESERIES_KEY))
    event_frames = dg.AssetSelection.assets(site.key(EVENT_FRAMES_KEY), site.key(EF_ATTRIBUTES_KEY))
    # The main job: catalogue + AF snapshots, then the hour of recorded values (which reads the fresh catalogue).
    # Event frames are daily-partitioned; Dagster refuses hourly and daily assets in one job, so they have their own.
    return {
        INGEST_JOB: dg.define_asset_job(
            site.job(INGEST_JOB),
            selection=catalogue | timeseries,
            description="PI catalogue, AF hierarchy and one hour (or a range of hours) of recorded values.",
            tags=tags,
        ),
        CATALOGUE_JOB: dg.define_asset_job(
            site.job(CATALOGUE_JOB),
            selection=catalogue,
            description="Daily snapshot of the PI catalogue and AF hierarchy.",
            tags=tags,
        ),
        TIMESERIES_JOB: dg.define_asset_job(
            site.job(TIMESERIES_JOB),
            selection=timeseries,
            description="Recorded values for UTC hours (or hour × shard cells on a sharded connection).",
            tags=tags,
        ),
        EVENT_FRAMES_JOB: dg.define_asset_job(
            site.job(EVENT_FRAMES_JOB),
            selection=event_frames,
            description="Event frames and their captured attribute values for UTC days.",
            tags=tags,
        ),
    }


DEFAULT_JOBS = site_jobs()
pi_ingest_job = DEFAULT_JOBS[INGEST_JOB]
pi_catalogue_job = DEFAULT_JOBS[CATALOGUE_JOB]
pi_timeseries_job = DEFAULT_JOBS[TIMESERIES_JOB]
pi_event_frames_job = DEFAULT_JOBS[EVENT_FRAMES_JOB]
