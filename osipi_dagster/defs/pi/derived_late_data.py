"""The derived reads' late-data sensor: re-asks PI for the newest materialized hours of each derived table and
requests a repair run of exactly the hours whose answer changed (backdated inserts, edits, deletions).

Same cursor and retry rules as pi_late_data_sensor (both settle in-flight repairs with defs/repairs.py): an
in-flight repair is not requested again until it materialized, or its run failed.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from osipi_dagster.defs.pi.names import REPAIR_KEY_TAG, REPAIR_REASON_TAG, REPAIR_TAG
from osipi_dagster.defs.repairs import settle
from osipi_dagster.lib.landing.derived import DerivedRead, stale_hours
from osipi_dagster.lib.landing.late_data import HOUR_FORMAT, hour_key
from osipi_dagster.lib.landing.selection import tags_to_extract

MAT = dg.DagsterEventType.ASSET_MATERIALIZATION
REASON = "derived_changed_in_pi"


def audit_hours(done: list[datetime], lookback_hours: int, in_flight: dict[str, Any]) -> list[datetime]:
    """The newest `lookback_hours` of the materialized hours, less those with a repair in flight."""
    if not done:
        return []
    horizon = max(done) + timedelta(hours=1) - timedelta(hours=lookback_hours)
    return [h for h in done if h >= horizon and hour_key(h) not in in_flight]


def build_derived_late_data_sensor(
    pairs: list[tuple[DerivedRead, dg.AssetsDefinition]],
    job: Any,  # the unresolved asset job of the derived assets
    pi_key: str,
    lake_key: str,
    name_prefix: str,
) -> dg.SensorDefinition:
    """A sensor auditing the derived assets in `pairs` over the pi resource's late_data.lookback_hours."""

    @dg.sensor(
        name=f"{name_prefix}_derived_late_data_sensor",
        jobs=[job],
        minimum_interval_seconds=900,
        required_resource_keys={pi_key, lake_key},
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-asks PI for the newest materialized hours of the derived reads and repairs those that changed.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        pi, lake = getattr(context.resources, pi_key), getattr(context.resources, lake_key)
        instance, now = context.instance, time.time()
        try:
            cursor = json.loads(context.cursor or "{}")
        except ValueError:
            cursor = {}
        the_lake = lake.get_lake()
        tags = tags_to_extract(the_lake, pi.settings().tag_filter)
        requests, events, state, audited = [], [], {}, 0
        with pi.get_client() as client:
            for read, asset in pairs:
                latest = dict(instance.get_latest_storage_id_by_partition(asset.key, MAT))
                flying, retries = settle(instance, dict(cursor.get(read.table) or {}), latest, now)
                done = sorted(datetime.strptime(k, HOUR_FORMAT).replace(tzinfo=UTC) for k in latest)
                hours = audit_hours(done, pi.late_data.lookback_hours, flying)
                audited += len(hours)
                stale = (
                    stale_hours(client, the_lake.table(read.table), read, tags, hours) if tags.height else []
                )
                for hour in stale:
                    partition = hour_key(hour)
                    after, attempt = latest.get(partition, 0), retries.get(partition, 0)
                    run_key = f"late-data:{read.table}:{partition}:{after}:{attempt}"
                    requests.append(
                        dg.RunRequest(
                            run_key=run_key,
                            job_name=job.name,
                            partition_key=partition,
                            asset_selection=[asset.key],
                            tags={
                                REPAIR_TAG: "late_data",
                                REPAIR_REASON_TAG: REASON,
                                REPAIR_KEY_TAG: run_key,
                            },
                        )
                    )
                    flying[partition] = {
                        "after": after,
                        "attempt": attempt,
                        "run_key": run_key,
                        "requested_at": now,
                    }
                    events.append(
                        dg.AssetObservation(
                            asset_key=asset.key,
                            partition=partition,
                            metadata={"late_data_detected": True, "repair_run_key": run_key},
                        )
                    )
                state[read.table] = flying
        new_cursor = json.dumps(state, sort_keys=True)
        if not requests:
            return dg.SensorResult(
                skip_reason=f"{audited} hours re-asked from PI, no change", cursor=new_cursor
            )
        return dg.SensorResult(run_requests=requests, cursor=new_cursor, asset_events=events)

    return _sensor
