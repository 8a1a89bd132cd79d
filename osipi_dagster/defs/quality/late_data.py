"""The late-data sensor: re-audits recently materialized PI windows against PI and requests re-materialization of
exactly the partitions that changed (backdated inserts, edited and deleted values, event frames that closed).

The audit itself is `osipi_dagster.lib.landing.late_data`; this module keeps the cursor and the run requests.
Cursor (JSON) = repairs in flight; each tick is idempotent: an in-flight partition is not re-requested until its
repair materialized (then it is audited again) or its run failed (then it may be requested with a new run_key).
With tag shards a partition is an hour × shard: only the shards whose tags changed are requested.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi import jobs
from osipi_dagster.defs.pi.names import (
    EVENT_FRAMES_KEY,
    REPAIR_KEY_TAG,
    REPAIR_REASON_TAG,
    REPAIR_TAG,
    TIMESERIES_KEY,
)
from osipi_dagster.defs.pi.partitions import TAG_SHARDS
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.repairs import settle
from osipi_dagster.lib.landing.late_data import (
    EVENT_FRAMES,
    TIMESERIES,
    Repair,
    audit_timeseries,
    event_frame_repairs,
    split_partition,
    timeseries_repairs,
)
from osipi_dagster.lib.landing.selection import tags_to_extract
from osipi_dagster.lib.settings import LateDataSettings

# A requested repair that neither materialized nor shows up as a run after this long is requested again.
MAT = dg.DagsterEventType.ASSET_MATERIALIZATION
KEYS = {TIMESERIES: TIMESERIES_KEY, EVENT_FRAMES: EVENT_FRAMES_KEY}


@dataclass(frozen=True)
class Targets:
    """What one connection's sensor audits and repairs: the asset key and the job of each kind, and the
    connection's tag shards (pi_timeseries partitions are hour × shard when more than one)."""

    keys: dict[str, dg.AssetKey]
    jobs: dict[str, Any]
    shards: int = 1


DEFAULT_TARGETS = Targets(
    KEYS, {TIMESERIES: jobs.pi_timeseries_job, EVENT_FRAMES: jobs.pi_event_frames_job}, TAG_SHARDS
)


def parse_cursor(raw: str | None) -> dict[str, dict[str, dict[str, Any]]]:
    """{"timeseries": {partition: entry}, "event_frames": {...}}; an unreadable cursor starts clean (the audit is
    stateless, so the only loss is one possibly repeated repair request)."""
    empty: dict[str, dict[str, dict[str, Any]]] = {TIMESERIES: {}, EVENT_FRAMES: {}}
    if not raw:
        return empty
    try:
        data = json.loads(raw)
    except ValueError:
        return empty
    return {kind: dict(data.get(kind) or {}) for kind in empty}


def request_for(
    repair: Repair, after: int, attempt: int, targets: Targets = DEFAULT_TARGETS
) -> dg.RunRequest:
    run_key = f"late-data:{repair.kind}:{repair.partition}:{after}:{attempt}"
    job = targets.jobs[repair.kind]
    return dg.RunRequest(
        # The key includes the partition's current materialization and the attempt: a later change of the same
        # partition, or a retry after a failed repair, gets a new key (run keys are remembered forever).
        run_key=run_key,
        job_name=job.name,
        partition_key=repair.partition,
        tags={REPAIR_TAG: "late_data", REPAIR_REASON_TAG: repair.reason, REPAIR_KEY_TAG: run_key},
    )


def evaluate(
    context: dg.SensorEvaluationContext,
    pi: PIWebAPIResource,
    lake: LakeResource,
    settings: LateDataSettings,
    targets: Targets = DEFAULT_TARGETS,
) -> dg.SensorResult:
    instance = context.instance
    cursor = parse_cursor(context.cursor)
    now = time.time()
    the_lake = lake.get_lake()
    latest = {
        kind: dict(instance.get_latest_storage_id_by_partition(key, MAT))
        for kind, key in targets.keys.items()
    }
    in_flight: dict[str, dict[str, dict[str, Any]]] = {}
    retries: dict[str, dict[str, int]] = {}
    for kind in targets.keys:
        in_flight[kind], retries[kind] = settle(instance, cursor[kind], latest[kind], now)

    # Hours with a landed partition that is not being repaired (any shard of it, when sharded).
    open_hours = {split_partition(k)[0] for k in latest[TIMESERIES] if k not in in_flight[TIMESERIES]}
    hours_done = sorted({split_partition(k)[0] for k in latest[TIMESERIES]})
    repairs: list[Repair] = []
    audited = 0
    with pi.get_client() as client:
        if hours_done:
            horizon = hours_done[-1] + timedelta(hours=1)
            hours = [
                h
                for h in hours_done
                if h >= horizon - timedelta(hours=settings.lookback_hours) and h in open_hours
            ]
            checksum = {h for h in hours if h >= horizon - timedelta(hours=settings.checksum_hours)}
            if hours:
                tags = tags_to_extract(the_lake, pi.settings().tag_filter)
                if tags.height:
                    audited = len(hours)
                    mismatches = audit_timeseries(client, the_lake, tags, hours, checksum)
                    names = dict(tags.select("web_id", "tag").iter_rows())
                    # Only landed partitions not in flight: a shard never landed is the backfill's, not a repair.
                    repairs += [
                        r
                        for r in timeseries_repairs(mismatches, names, targets.shards)
                        if r.partition in latest[TIMESERIES] and r.partition not in in_flight[TIMESERIES]
                    ]
        repairs += event_frame_repairs(
            client, the_lake, settings.watch_event_frames, set(in_flight[EVENT_FRAMES])
        )

    requests, events = [], []
    for repair in repairs:
        after = latest[repair.kind].get(repair.partition, 0)
        attempt = retries[repair.kind].get(repair.partition, 0)
        request = request_for(repair, after, attempt, targets)
        requests.append(request)
        in_flight[repair.kind][repair.partition] = {
            "after": after,
            "attempt": attempt,
            "run_key": request.run_key,
            "requested_at": now,
        }
        key = targets.keys[repair.kind]
        events.append(
            dg.AssetObservation(
                asset_key=key,
                partition=repair.partition,
                metadata={"late_data_detected": True, "repair_run_key": request.run_key, **repair.metadata},
            )
        )
        context.log.info(f"late data in {key.to_user_string()} {repair.partition}: {repair.metadata}")
    new_cursor = json.dumps(in_flight, sort_keys=True)
    if not requests:
        waiting = sum(len(v) for v in in_flight.values())
        return dg.SensorResult(
            skip_reason=f"{audited} hours audited against PI, no change found"
            + (f"; {waiting} repairs in flight" if waiting else ""),
            cursor=new_cursor,
        )
    return dg.SensorResult(run_requests=requests, cursor=new_cursor, asset_events=events)


@dg.sensor(
    name="pi_late_data_sensor",
    jobs=[jobs.pi_timeseries_job, jobs.pi_event_frames_job],
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-audits recently materialized hours (the pi resource's late_data.lookback_hours) against PI counts, totals "
    "and checksums, and every event frame stored in progress; requests re-materialization of exactly what changed.",
)
def pi_late_data_sensor(
    context: dg.SensorEvaluationContext, pi: PIWebAPIResource, lake: LakeResource
) -> dg.SensorResult:
    return evaluate(context, pi, lake, pi.late_data)


def build_late_data_sensor(name: str, pi_key: str, lake_key: str, targets: Targets) -> dg.SensorDefinition:
    """The late-data sensor of one connection: its resources by key, its assets and jobs (a PIConnection's)."""

    @dg.sensor(
        name=name,
        jobs=list(targets.jobs.values()),
        minimum_interval_seconds=900,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={pi_key, lake_key},
        description=pi_late_data_sensor.description,
    )
    def _late_data(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        pi = getattr(context.resources, pi_key)
        return evaluate(context, pi, getattr(context.resources, lake_key), pi.late_data, targets)

    return _late_data
