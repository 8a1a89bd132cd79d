"""Repairs in flight, shared by the late-data sensors (recorded values, event frames, derived reads).

A sensor's cursor holds the repairs it requested; `settle` says which are done, which still run and which failed for
good, so a partition is re-requested only after its repair failed (Dagster's run retries own the retrying).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from osipi_dagster.defs.pi.names import REPAIR_KEY_TAG

# A requested repair that neither materialized nor shows up as a run after this long is requested again.
IN_FLIGHT_TIMEOUT_S = 2 * 3600


def settle(
    instance: dg.DagsterInstance, entries: dict[str, dict[str, Any]], latest: dict[str, int], now: float
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Split in-flight repairs into those still running (skip them) and next attempts of failed ones.

    Returns (still in flight, {partition: attempt number for a new request}). A repair is done once a newer
    materialization of its partition exists; it failed when its run failed or was canceled and Dagster will not
    retry it (a run retry keeps the repair tag and stays in flight), or when nothing happened for
    IN_FLIGHT_TIMEOUT_S (the run was never launched).
    """
    still: dict[str, dict[str, Any]] = {}
    retry: dict[str, int] = {}
    for partition, entry in entries.items():
        if latest.get(partition, 0) > int(entry["after"]):
            continue
        runs = instance.get_runs(filters=dg.RunsFilter(tags={REPAIR_KEY_TAG: entry["run_key"]}), limit=1)
        failed = (
            bool(runs)
            and runs[0].status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
            and not runs[0].is_complete_and_waiting_to_retry
        )
        stale = not runs and now - float(entry.get("requested_at", now)) > IN_FLIGHT_TIMEOUT_S
        if failed or stale:
            retry[partition] = int(entry.get("attempt", 0)) + 1
        else:
            still[partition] = entry
    return still, retry
