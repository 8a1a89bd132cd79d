"""Asset jobs for PI data: the main ingest job and the per-cadence jobs the schedules launch.

Selections are by asset key so this module holds only jobs (the defs loader collects module-level objects).
"""

from __future__ import annotations

import dagster as dg

CATALOGUE = dg.AssetSelection.assets(
    dg.AssetKey(["pi", "pi_points"]), dg.AssetKey(["pi", "af_elements"]), dg.AssetKey(["pi", "af_attributes"])
)
TIMESERIES = dg.AssetSelection.assets(dg.AssetKey(["pi", "pi_timeseries"]))
EVENT_FRAMES = dg.AssetSelection.assets(
    dg.AssetKey(["pi", "event_frames"]), dg.AssetKey(["pi", "event_frame_attributes"])
)

# The main job: catalogue + AF snapshots, then the hour of recorded values (which reads the fresh catalogue).
# Event frames are daily-partitioned; Dagster refuses hourly and daily assets in one job, so they have their own.
pi_ingest_job = dg.define_asset_job(
    "pi_ingest_job",
    selection=CATALOGUE | TIMESERIES,
    description="PI catalogue, AF hierarchy and one hour (or a range of hours) of recorded values.",
)
pi_catalogue_job = dg.define_asset_job(
    "pi_catalogue_job",
    selection=CATALOGUE,
    description="Daily snapshot of the PI catalogue and AF hierarchy.",
)
pi_timeseries_job = dg.define_asset_job(
    "pi_timeseries_job", selection=TIMESERIES, description="Recorded values for UTC hours."
)
pi_event_frames_job = dg.define_asset_job(
    "pi_event_frames_job",
    selection=EVENT_FRAMES,
    description="Event frames and their captured attribute values for UTC days.",
)
