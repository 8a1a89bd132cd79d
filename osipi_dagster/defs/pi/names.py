"""Names the PI wiring shares with other defs folders, the UI and deployments: asset keys, job names, run tags.

Defined once; asset names equal the lake table names (osipi_dagster/lib/landing/tables.py).
"""

from __future__ import annotations

import dagster as dg

from osipi_dagster.lib.landing.derived import INTERPOLATED_TABLE, SUMMARY_TABLE
from osipi_dagster.lib.landing.tables import (
    ATTRIBUTES_TABLE,
    EF_ATTRIBUTES_TABLE,
    ELEMENTS_TABLE,
    EVENT_FRAMES_TABLE,
    POINTS_TABLE,
    TIMESERIES_TABLE,
)

KEY_PREFIX = "pi"
GROUP = "pi"
# The pool that bounds concurrent load on PI Web API.
POOL = "pi_web_api"
KINDS = {"deltalake", "polars"}


def asset_key(table: str) -> dg.AssetKey:
    """The asset key of a PI table (its name under the `pi` prefix)."""
    return dg.AssetKey([KEY_PREFIX, table])


POINTS_KEY = asset_key(POINTS_TABLE)
ELEMENTS_KEY = asset_key(ELEMENTS_TABLE)
ATTRIBUTES_KEY = asset_key(ATTRIBUTES_TABLE)
EVENT_FRAMES_KEY = asset_key(EVENT_FRAMES_TABLE)
EF_ATTRIBUTES_KEY = asset_key(EF_ATTRIBUTES_TABLE)
TIMESERIES_KEY = asset_key(TIMESERIES_TABLE)
# Derived reads (opt-in, OSIPI_DERIVED_*): defs/pi/derived.py.
INTERPOLATED_KEY = asset_key(INTERPOLATED_TABLE)
SUMMARY_KEY = asset_key(SUMMARY_TABLE)

INGEST_JOB = "pi_ingest_job"
CATALOGUE_JOB = "pi_catalogue_job"
TIMESERIES_JOB = "pi_timeseries_job"
EVENT_FRAMES_JOB = "pi_event_frames_job"

# Run tags on every run of a connection's jobs, which the production run queue limits on
# (deploy/dagster.production.yaml `tag_concurrency_limits`): per connection, and per PI concurrency pool.
CONNECTION_TAG = "osipi/connection"
POOL_TAG = "osipi/pool"
DEFAULT_CONNECTION = "default"

# Run tags set by the late-data sensor on repair runs: the asset then diffs the window it replaces.
REPAIR_TAG = "osipi/repair"
REPAIR_REASON_TAG = "osipi/repair_reason"
# Carries the run_key, so the sensor finds its repair runs whichever way they were launched.
REPAIR_KEY_TAG = "osipi/repair_key"
