"""The report sensor: each lander commit becomes a materialization of the stream asset, without a run (one sensor
per connection: the environment's `pi_stream_report_sensor` on pi/pi_timeseries_stream, a PIConnection's
`<name>__pi_stream_report_sensor` on `<prefix>/pi_timeseries_stream`, each reading its own lake and spool).

The lander (lib/streaming/lander.py) commits every micro-batch with its report in the Delta commit; this sensor
reads the Delta log after the last reported version and reports one `AssetMaterialization` per commit (values,
latency, listener and lander figures), then evaluates the checks on streamed data: no key twice over what was just
landed, and, once an hour has closed, the lake's values per stream against PI's archive count.

Exactly once: the event log is the truth for what was reported (the daemon writes the events before it saves the
cursor, so a daemon killed in between must not report them twice): the sensor starts after the highest version
found in either.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import orjson
from deltalake import DeltaTable

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.streaming.names import STREAM_KEY, SiteLike, StreamNames
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.piwebapi.summaries import HALF_OPEN_BASIS
from osipi_dagster.lib.quality import summary_per_hour
from osipi_dagster.lib.streaming.landing import TIMESERIES_TABLE
from osipi_dagster.lib.streaming.reports import (
    LandingCommit,
    coverage_vs_archive,
    duplicate_keys,
    lake_good_counts,
    landing_commits,
    open_table,
)

log = logging.getLogger(__name__)

REPORT_SENSOR_INTERVAL_S = 30
# Delta versions read per tick at most; a sensor that was off for longer reports the older ones as a count.
MAX_COMMITS_PER_TICK = 2000
UNIQUE_KEYS_CHECK = "stream_unique_keys"
COVERAGE_CHECK = "stream_complete_vs_archive"
# An hour is compared with the archive once values this far past its end have landed, with every channel
# connected and nothing waiting in the spool (values of the hour still in flight would count as missing).
COVERAGE_GRACE = timedelta(minutes=2)
# Closed hours compared per tick at most, oldest first (after the sensor was off, the rest on later ticks).
MAX_COVERAGE_HOURS = 3
LANDER_SHOWN = ("landings", "errors", "spool_backlog_segments")


def reported_version(instance: dg.DagsterInstance, key: dg.AssetKey = STREAM_KEY) -> int:
    """The highest Delta version already reported (runless materializations of the stream asset), or -1."""
    records = instance.fetch_materializations(key, limit=1).records
    if records and records[0].run_id:  # a run's materialization is the newest: look further back
        records = instance.fetch_materializations(key, limit=100).records
    for record in records:  # newest first
        if record.run_id:
            continue  # a landing run's own materialization (the run-per-batch sensor), not a report
        mat = record.asset_materialization
        value = mat.metadata.get("delta_version") if mat is not None else None
        if value is not None and isinstance(getattr(value, "value", None), int):
            return int(value.value)  # type: ignore[union-attr]
    return -1


def _plain(value: object) -> object:
    if isinstance(value, float | int | str | bool):
        return value
    return None if value is None else str(value)


def materialization(
    commit: LandingCommit, table_uri: str, asset_key: dg.AssetKey = STREAM_KEY
) -> dg.AssetMaterialization:
    """The UI's record of one landing: what it read and inserted, its latency, the listener and lander figures."""
    r = commit.report
    metadata: dict[str, Any] = {
        "delta_version": commit.version,
        "committed_at": dg.MetadataValue.timestamp(commit.committed_at),
        "values": int(r.get("values", 0)),
        "values_inserted": commit.inserted,
        "dagster/row_count": commit.inserted,
        "channel_values": int(r.get("channel_values", 0)),
        "gap_values_in_batch": int(r.get("gap_values", 0)),
        "duplicates_in_batch": int(r.get("duplicates_in_batch", 0)),
        "superseded_by_archive": int(r.get("superseded_by_archive", 0)),
        "segments": dg.MetadataValue.json({"first": r["segments"][0], "last": r["segments"][-1]}),
        "segment_count": int(r.get("segment_count", 0)),
        "table_uri": dg.MetadataValue.path(table_uri),
        "landed_by": "lander",
    }
    for name in (
        "latency_p50_s",
        "latency_p95_s",
        "latency_max_s",
        "spool_to_lake_p50_s",
        "spool_to_lake_p95_s",
    ):
        value = getattr(commit, name)
        if value is not None:
            metadata[name] = dg.MetadataValue.float(value)
    for name in ("first_timestamp", "last_timestamp"):
        if r.get(name):
            metadata[name] = dg.MetadataValue.timestamp(datetime.fromisoformat(r[name]))
    for key, value in (r.get("listener") or {}).items():
        if value is not None:
            metadata[f"listener_{key}"] = _plain(value)
    for key in LANDER_SHOWN:
        if (r.get("lander") or {}).get(key) is not None:
            metadata[f"lander_{key}"] = _plain(r["lander"][key])
    return dg.AssetMaterialization(
        asset_key=asset_key,
        description=f"landed by the lander: {commit.inserted:,} values inserted (Delta version {commit.version})",
        metadata=metadata,
    )


def unique_keys_evaluation(
    table: DeltaTable, commits: list[LandingCommit], key: dg.AssetKey = STREAM_KEY
) -> dg.AssetCheckEvaluation:
    """No (web_id, timestamp, ordinal) twice in pi_timeseries over the time span these landings covered."""
    start = min(datetime.fromisoformat(c.report["first_timestamp"]) for c in commits)
    end = max(datetime.fromisoformat(c.report["last_timestamp"]) for c in commits)
    rows, dupes = duplicate_keys(table, start, end)
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=UNIQUE_KEYS_CHECK,
        passed=dupes.height == 0,
        metadata={
            "from": dg.MetadataValue.timestamp(start),
            "to": dg.MetadataValue.timestamp(end),
            "rows_checked": rows,
            "duplicated_keys": dupes.height,
            "landings": len(commits),
            "versions": f"{commits[0].version}..{commits[-1].version}",
            "sample": dg.MetadataValue.json(
                [[w, t.isoformat(), o] for w, t, o, _ in dupes.head(5).iter_rows()]  # type: ignore[union-attr]
            ),
        },
    )


def coverage_evaluation(
    ref: DeltaTableRef,
    pi: PIWebAPIResource,
    web_ids: list[str],
    hour: datetime,
    key: dg.AssetKey = STREAM_KEY,
) -> dg.AssetCheckEvaluation:
    """The lake's good values per subscribed stream in `hour` (streamed, or recorded once the archive replaced
    them) against PI's Count for the hour: a stream with fewer values than the archive is a gap."""
    with pi.get_client() as client:
        summary = client.summary(
            web_ids, hour, hour + timedelta(hours=1), ("Count",), "1h", calculation_basis=HALF_OPEN_BASIS
        )
    figures = coverage_vs_archive(lake_good_counts(ref, web_ids, hour), summary_per_hour(summary, hour))
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=COVERAGE_CHECK,
        passed=figures["missing_values"] == 0,
        metadata={
            "hour": dg.MetadataValue.timestamp(hour),
            **{k: dg.MetadataValue.json(v) if isinstance(v, list) else v for k, v in figures.items()},
        },
        description=f"hour {hour:%Y-%m-%d %H:00} UTC: {figures['missing_values']} archive values missing",
    )


def closed_hours(cursor: dict[str, Any], commits: list[LandingCommit]) -> list[datetime]:
    """Hours whose coverage can be compared now (see COVERAGE_GRACE), from the cursor's next unchecked hour on.

    The first hour checked is the first whole hour after the listener's first start. Updates the cursor's
    `newest` (latest landed PI timestamp) and `quiet` (the latest report had all channels up and no backlog)."""
    for c in commits:
        last = c.report.get("last_timestamp")
        if last and (cursor.get("newest") is None or last > cursor["newest"]):
            cursor["newest"] = last
        listener, lander = c.report.get("listener") or {}, c.report.get("lander") or {}
        if cursor.get("next_hour") is None and listener.get("started_at"):
            started = datetime.fromisoformat(listener["started_at"])
            first = started.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            cursor["next_hour"] = first.isoformat()
        cursor["quiet"] = (
            listener.get("channels_connected") == listener.get("channels")
            and lander.get("spool_backlog_segments", 0) <= 2  # about a second of values behind the batch
        )
    if not (cursor.get("newest") and cursor.get("next_hour") and cursor.get("quiet")):
        return []
    newest = datetime.fromisoformat(cursor["newest"])
    hour = datetime.fromisoformat(cursor["next_hour"])
    hours = []
    while hour + timedelta(hours=1) + COVERAGE_GRACE <= newest and len(hours) < MAX_COVERAGE_HOURS:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def report_sensor(site: SiteLike | None = None) -> dg.SensorDefinition:
    """The connection's report sensor over its own lake (lander commits) and spool (subscribed streams)."""
    names = StreamNames.of(site)

    @dg.sensor(
        name=names.named("pi_stream_report_sensor"),
        minimum_interval_seconds=REPORT_SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Reports every landing the lander committed as a materialization of {names.key.to_user_string()} "
        "(no run), and evaluates the streamed-data checks: unique keys over each tick's landings, and coverage "
        "against the archive once an hour has closed.",
        required_resource_keys={names.lake_key, names.spool_key, names.pi_key},
    )
    def _report(context: dg.SensorEvaluationContext, **_called_with: object) -> dg.SensorResult:
        # Called directly (tests), Dagster also passes the required resources as keywords: read context.resources.
        lake, spool, pi = (
            getattr(context.resources, k) for k in (names.lake_key, names.spool_key, names.pi_key)
        )
        return report_tick(context, lake, spool, pi, names.key)

    return _report


def report_tick(
    context: dg.SensorEvaluationContext,
    lake: LakeResource,
    spool: SpoolResource,
    pi: PIWebAPIResource,
    key: dg.AssetKey,
) -> dg.SensorResult:
    """One tick: report the landings after the last reported version, then evaluate the checks."""
    cursor: dict[str, Any] = orjson.loads(context.cursor) if context.cursor else {}
    ref = lake.get_lake().table(TIMESERIES_TABLE)
    after = max(int(cursor.get("version", -1)), reported_version(context.instance, key))
    table = open_table(ref)  # one snapshot for the whole tick
    commits, latest, unread = landing_commits(table, after, MAX_COMMITS_PER_TICK)
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = [
        materialization(c, ref.uri, key) for c in commits
    ]
    if unread:
        context.log.warning(
            f"{unread} Delta versions after {after} were not read (more than {MAX_COMMITS_PER_TICK})"
        )
    if commits and table is not None:
        events.append(unique_keys_evaluation(table, commits, key))
    hours = closed_hours(cursor, commits)
    if hours:
        web_ids = spool.reader().watermarks()["web_id"].to_list()
        for hour in hours:
            try:
                events.append(coverage_evaluation(ref, pi, web_ids, hour, key))
            except Exception as exc:  # PI unreachable: compare this hour on a later tick
                context.log.warning(f"coverage of {hour:%Y-%m-%d %H:00} not compared yet: {exc}")
                break
            cursor["next_hour"] = (hour + timedelta(hours=1)).isoformat()
    # Every version up to the latest was looked at (other writers' commits have no report: skipped).
    cursor["version"] = max(after, latest if latest is not None else -1)
    text = orjson.dumps(cursor).decode()
    if not events:
        reason = "no table yet" if latest is None else f"no new landing after Delta version {after}"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=text)
    return dg.SensorResult(asset_events=events, cursor=text)


pi_stream_report_sensor = report_sensor()
