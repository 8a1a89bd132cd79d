"""Asset jobs for PI data: the main ingest job and the per-cadence jobs the schedules launch.

Selections are by asset key so this module holds only jobs (the defs loader collects module-level objects).
"""

from __future__ import annotations

import dagster as dg

from osipi_dagster.defs.pi.names import (
    ATTRIBUTES_KEY,
    CATALOGUE_JOB,
    EF_ATTRIBUTES_KEY,
    ELEMENTS_KEY,
    EVENT_FRAMES_JOB,
    EVENT_FRAMES_KEY,
    INGEST_JOB,
    POINTS_KEY,
    TIMESERIES_JOB,
    TIMESERIES_KEY,
)

CATALOGUE = dg.AssetSelection.assets(POINTS_KEY, ELEMENTS_KEY, ATTRIBUTES_KEY)
TIMESERIES = dg.AssetSelection.assets(TIMESERIES_KEY)
EVENT_FRAMES = dg.AssetSelection.assets(EVENT_FRAMES_KEY, EF_ATTRIBUTES_KEY)

# The main job: catalogue + AF snapshots, then the hour of recorded values (which reads the fresh catalogue).
# Event frames are daily-partitioned; Dagster refuses hourly and daily assets in one job, so they have their own.
pi_ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=CATALOGUE | TIMESERIES,
    description="PI catalogue, AF hierarchy and one hour (or a range of hours) of recorded values.",
)
pi_catalogue_job = dg.define_asset_job(
    CATALOGUE_JOB,
    selection=CATALOGUE,
    description="Daily snapshot of the PI catalogue and AF hierarchy.",
)
pi_timeseries_job = dg.define_asset_job(
    TIMESERIES_JOB, selection=TIMESERIES, description="Recorded values for UTC hours."
)
pi_event_frames_job = dg.define_asset_job(
    EVENT_FRAMES_JOB,
    selection=EVENT_FRAMES,
    description="Event frames and their captured attribute values for UTC days.",
)
