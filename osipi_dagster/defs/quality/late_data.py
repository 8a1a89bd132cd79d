"""The late-data sensor: re-audits recently materialized PI windows against PI and requests re-materialization of
exactly the partitions that changed (backdated inserts, edited and deleted values, event frames that closed).

Cursor (JSON) = repairs in flight; each tick is idempotent: an in-flight partition is not re-requested until its
repair materialized (then it is audited again) or its run failed (then it may be requested with a new run_key).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi import jobs
from osipi_dagster.defs.pi.assets import (
    EVENT_FRAMES_TABLE,
    REPAIR_REASON_TAG,
    REPAIR_TAG,
    TIMESERIES_TABLE,
    recorded_scan,
    tags_to_extract,
)
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.client import HALF_OPEN_BASIS
from osipi_dagster.lib.quality import (
    NUMERIC_POINT_TYPES,
    checksum_mismatches,
    count_mismatches,
    hour_stats,
    merge_hour_stats,
    summary_per_hour,
)
from osipi_dagster.lib.settings import LateDataSettings

TIMESERIES_KEY = dg.AssetKey(["pi", "pi_timeseries"])
EVENT_FRAMES_KEY = dg.AssetKey(["pi", "event_frames"])
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
# Our own tag carrying the run_key, so the sensor finds its repair runs whichever way they were launched.
REPAIR_KEY_TAG = "osipi/repair_key"
# A requested repair that neither materialized nor shows up as a run after this long is requested again.
IN_FLIGHT_TIMEOUT_S = 2 * 3600
SAMPLE = 20
MAT = dg.DagsterEventType.ASSET_MATERIALIZATION


@dataclass
class Repair:
    """One partition to re-materialize and why."""

    kind: str  # "timeseries" | "event_frames"
    partition: str
    reason: str
    metadata: dict[str, Any]


def parse_cursor(raw: str | None) -> dict[str, dict[str, dict[str, Any]]]:
    """{"timeseries": {partition: entry}, "event_frames": {...}}; an unreadable cursor starts clean (the audit is
    stateless, so the only loss is one possibly repeated repair request)."""
    empty: dict[str, dict[str, dict[str, Any]]] = {"timeseries": {}, "event_frames": {}}
    if not raw:
        return empty
    try:
        data = json.loads(raw)
    except ValueError:
        return empty
    return {kind: dict(data.get(kind) or {}) for kind in empty}


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


def hour_key(hour: datetime) -> str:
    return hour.strftime(HOUR_FORMAT)


def pi_hour_summaries(
    client: PIWebAPIClient, tags: pl.DataFrame, start: datetime, end: datetime
) -> pl.DataFrame:
    """PI's Count (and Total, numeric tags only: PI refuses Total on others) per tag and hour over [start, end).

    Each hour is asked half-open, [hour, hour + 1h), as the lake's hours are: HALF_OPEN_BASIS, not EventWeighted,
    which with a single hour (one interval) would also count a value stamped exactly at the range end.
    """
    numeric = tags.filter(pl.col("point_type").is_in(NUMERIC_POINT_TYPES))["web_id"].to_list()
    other = tags.filter(~pl.col("point_type").is_in(NUMERIC_POINT_TYPES))["web_id"].to_list()
    parts = []
    for ids, types in ((numeric, ("Count", "Total")), (other, ("Count",))):
        if ids:
            s = client.summary(ids, start, end, types, "1h", calculation_basis=HALF_OPEN_BASIS)
            parts.append(summary_per_hour(s, start))
    return pl.concat(parts) if parts else summary_per_hour(pl.DataFrame(), start)


def pi_hour_checksums(client: PIWebAPIClient, ids: list[str], start: datetime, end: datetime) -> pl.DataFrame:
    """Checksums of a fresh recorded read, aggregated page by page (bounded memory)."""
    return merge_hour_stats(
        [hour_stats(page) for page in client.iter_recorded(ids, start, end) if page.height]
    )


def audit_timeseries(
    client: PIWebAPIClient,
    lake: Lake,
    tags: pl.DataFrame,
    hours: list[datetime],
    checksum_hours: set[datetime],
) -> pl.DataFrame:
    """Mismatching (web_id, hour) pairs over `hours` (audited by counts/totals) and `checksum_hours` (also by
    checksum). Columns: web_id, hour, reason, lake, pi (counts, or rows for checksums)."""
    start, end = min(hours), max(hours) + timedelta(hours=1)
    ids = tags["web_id"].to_list()
    wanted = pl.DataFrame({"hour": hours}, schema={"hour": pl.Datetime("us", "UTC")})
    in_tags = pl.col("web_id").is_in(pl.Series(ids, dtype=pl.Utf8).implode())
    lake_stats = hour_stats(recorded_scan(lake.table(TIMESERIES_TABLE), start, end).filter(in_tags))
    lake_stats = lake_stats.join(wanted, on="hour", how="semi")
    pi_sum = pi_hour_summaries(client, tags, start, end).join(wanted, on="hour", how="semi")
    found = [
        count_mismatches(lake_stats, pi_sum).select(
            "web_id", "hour", "reason", pl.col("lake_count").alias("lake"), pl.col("pi_count").alias("pi")
        )
    ]
    if checksum_hours:
        cs_start, cs_end = min(checksum_hours), max(checksum_hours) + timedelta(hours=1)
        cs_wanted = pl.DataFrame({"hour": sorted(checksum_hours)}, schema={"hour": pl.Datetime("us", "UTC")})
        pi_cs = pi_hour_checksums(client, ids, cs_start, cs_end).join(cs_wanted, on="hour", how="semi")
        lake_cs = lake_stats.join(cs_wanted, on="hour", how="semi")
        found.append(
            checksum_mismatches(lake_cs, pi_cs).select(
                "web_id", "hour", "reason", pl.col("lake_rows").alias("lake"), pl.col("pi_rows").alias("pi")
            )
        )
    return pl.concat(found).sort("hour", "web_id", "reason")


def timeseries_repairs(mismatches: pl.DataFrame, names: dict[str, str]) -> list[Repair]:
    repairs = []
    for (hour,), rows in mismatches.partition_by("hour", as_dict=True, maintain_order=True).items():
        web_ids = rows["web_id"].unique(maintain_order=True).to_list()
        reasons = sorted(set(rows["reason"].to_list()))
        counts = rows.filter(pl.col("reason") == "count")
        repairs.append(
            Repair(
                "timeseries",
                hour_key(hour),
                ",".join(reasons),
                {
                    "late_data_reasons": ", ".join(reasons),
                    "tags_differing": len(web_ids),
                    "tags": [names.get(w, w) for w in web_ids[:SAMPLE]],
                    "pi_good_count": int(counts["pi"].sum()),
                    "lake_good_count": int(counts["lake"].sum()),
                },
            )
        )
    return repairs


def event_frame_repairs(client: PIWebAPIClient, lake: Lake, watch: bool, skip: set[str]) -> list[Repair]:
    """Days whose frames are in progress in the lake but closed (or gone) in PI now.

    Every in-progress frame in the lake is looked up, whatever its age: a batch, a campaign or a downtime frame can
    stay open for weeks, and an age limit would freeze it as "in progress" in the lake forever. One POST /batch for
    all of them (the client splits it only at PI's batch size limit).
    """
    ref = lake.table(EVENT_FRAMES_TABLE)
    if not watch or not ref.exists():
        return []
    open_frames = ref.scan().filter(pl.col("in_progress")).select("web_id", "name", "date").collect()
    open_frames = open_frames.filter(~pl.col("date").cast(pl.Utf8).is_in(list(skip)))
    if open_frames.height == 0:
        return []
    urls = {w: client.url(f"eventframes/{w}") for w in open_frames["web_id"].to_list()}
    contents, errors = client.batch_get(urls, raise_errors=False)
    status = {}
    for w in urls:
        if w in errors:
            # A frame that no longer exists changed as much as one that closed; other errors are not evidence.
            status[w] = "deleted" if errors[w].status == 404 else None
        else:
            end = str((contents.get(w) or {}).get("EndTime") or "")
            status[w] = "closed" if end and not end.startswith("9999") else None
    changed = open_frames.with_columns(
        pl.col("web_id").replace_strict(status, default=None, return_dtype=pl.Utf8).alias("change")
    ).filter(pl.col("change").is_not_null())
    repairs = []
    for (day,), rows in changed.partition_by("date", as_dict=True, maintain_order=True).items():
        repairs.append(
            Repair(
                "event_frames",
                day.isoformat(),
                "event_frames_closed",
                {
                    "late_data_reasons": "in-progress event frames closed in PI",
                    "frames_closed": int((rows["change"] == "closed").sum()),
                    "frames_deleted": int((rows["change"] == "deleted").sum()),
                    "frames": rows["name"].head(SAMPLE).to_list(),
                },
            )
        )
    return repairs


def request_for(repair: Repair, after: int, attempt: int) -> dg.RunRequest:
    run_key = f"late-data:{repair.kind}:{repair.partition}:{after}:{attempt}"
    job = jobs.pi_timeseries_job if repair.kind == "timeseries" else jobs.pi_event_frames_job
    return dg.RunRequest(
        # The key includes the partition's current materialization and the attempt: a later change of the same
        # partition, or a retry after a failed repair, gets a new key (run keys are remembered forever).
        run_key=run_key,
        job_name=job.name,
        partition_key=repair.partition,
        tags={REPAIR_TAG: "late_data", REPAIR_REASON_TAG: repair.reason, REPAIR_KEY_TAG: run_key},
    )


def evaluate(
    context: dg.SensorEvaluationContext, pi: PIWebAPIResource, lake: LakeResource, settings: LateDataSettings
) -> dg.SensorResult:
    instance = context.instance
    cursor = parse_cursor(context.cursor)
    now = time.time()
    the_lake = lake.get_lake()
    latest = {
        "timeseries": dict(instance.get_latest_storage_id_by_partition(TIMESERIES_KEY, MAT)),
        "event_frames": dict(instance.get_latest_storage_id_by_partition(EVENT_FRAMES_KEY, MAT)),
    }
    in_flight: dict[str, dict[str, dict[str, Any]]] = {}
    retries: dict[str, dict[str, int]] = {}
    for kind in ("timeseries", "event_frames"):
        in_flight[kind], retries[kind] = settle(instance, cursor[kind], latest[kind], now)

    hours_done = sorted(datetime.strptime(k, HOUR_FORMAT).replace(tzinfo=UTC) for k in latest["timeseries"])
    repairs: list[Repair] = []
    audited = 0
    with pi.get_client() as client:
        if hours_done:
            horizon = hours_done[-1] + timedelta(hours=1)
            hours = [
                h
                for h in hours_done
                if h >= horizon - timedelta(hours=settings.lookback_hours)
                and hour_key(h) not in in_flight["timeseries"]
            ]
            checksum = {h for h in hours if h >= horizon - timedelta(hours=settings.checksum_hours)}
            if hours:
                tags = tags_to_extract(the_lake, pi.settings().tag_filter)
                if tags.height:
                    audited = len(hours)
                    mismatches = audit_timeseries(client, the_lake, tags, hours, checksum)
                    names = dict(tags.select("web_id", "tag").iter_rows())
                    repairs += timeseries_repairs(mismatches, names)
        repairs += event_frame_repairs(
            client, the_lake, settings.watch_event_frames, set(in_flight["event_frames"])
        )

    requests, events = [], []
    for repair in repairs:
        after = latest[repair.kind].get(repair.partition, 0)
        attempt = retries[repair.kind].get(repair.partition, 0)
        request = request_for(repair, after, attempt)
        requests.append(request)
        in_flight[repair.kind][repair.partition] = {
            "after": after,
            "attempt": attempt,
            "run_key": request.run_key,
            "requested_at": now,
        }
        key = TIMESERIES_KEY if repair.kind == "timeseries" else EVENT_FRAMES_KEY
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
