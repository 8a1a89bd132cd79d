"""The run-per-batch landing sensor (kept for deployments where Dagster runs must own every write; the default
design is the lander plus `pi_stream_report_sensor`, docs/streaming.md): one micro-batch run at a time over every
sealed spool segment waiting.

Cursor = the next segment sequence not yet requested; run_key = the batch's segment range, so a batch is requested
once (run keys are remembered forever). A failed run is Dagster's to retry (run_retries in dagster.yaml); the sensor
only re-requests segments still waiting once no run of their batch is unfinished or waiting for that retry (a new
key suffix), docs/architecture.md "Who retries what".
"""

from __future__ import annotations

import time

import dagster as dg
import orjson

from osipi_dagster.defs.streaming.names import STREAM_KEY, SiteLike, StreamNames
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.streaming import Segment


def landing_job(names: StreamNames) -> dg.UnresolvedAssetJobDefinition:
    # In-process executor: the landing is one step, and a step subprocess would double the per-run start-up cost
    # (measured in docs/streaming.md: the run's own work is ~0.1 s, the process start-ups are seconds).
    return dg.define_asset_job(
        names.named("pi_stream_landing_job"),
        selection=[names.key],
        executor_def=dg.in_process_executor,
        description="Land sealed spool segments (given in run config) into pi_timeseries.",
    )


BATCH_TAG = "osipi/stream_batch"
# A backlog (after downtime) is drained in runs of this many segments; in steady state a run takes all waiting.
MAX_SEGMENTS_PER_RUN = 500
SENSOR_INTERVAL_S = 3
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _batch_key(batch: list[Segment]) -> str:
    return f"{batch[0].seq}-{batch[-1].seq}"


def op_name(key: dg.AssetKey) -> str:
    """The stream asset's op name (the run config's key): the asset key as a Python identifier."""
    return key.to_python_identifier()


def _request(batch: list[Segment], run_key: str, key: str, op: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        run_config=dg.RunConfig(ops={op: {"config": {"segments": [s.name for s in batch]}}}),
        tags={BATCH_TAG: key},
    )


def _retry(
    context: dg.SensorEvaluationContext, cursor: dict, by_seq: dict[int, Segment], op: str
) -> dg.RunRequest | None:
    """A requested batch whose segments are still waiting while none of its runs is unfinished, and Dagster will not
    retry its last one, failed (or was lost): request the segments still waiting again under a new run key. Landed
    batches leave the cursor."""
    for key, attempt in list(cursor["pending"].items()):
        lo, hi = (int(x) for x in key.split("-"))
        left = [by_seq[q] for q in range(lo, hi + 1) if q in by_seq]
        if not left:
            del cursor["pending"][key]  # landed: the cursor keeps only live batches
            continue
        if context.instance.get_run_records(
            dg.RunsFilter(tags={BATCH_TAG: key}, statuses=UNFINISHED), limit=1
        ):
            continue
        last = context.instance.get_run_records(dg.RunsFilter(tags={BATCH_TAG: key}), limit=1)
        if not last:
            continue  # requested but not yet created by the daemon
        if last[0].dagster_run.is_complete_and_waiting_to_retry:
            continue  # failed, and Dagster's run retry (it keeps the batch tag) is about to run it again
        cursor["pending"][key] = attempt + 1
        return _request(left, f"stream:{key}#retry{attempt + 1}", key, op)
    return None


def landing_sensor(
    site: SiteLike | None = None,
) -> tuple[dg.SensorDefinition, dg.UnresolvedAssetJobDefinition]:
    """The connection's run-per-batch landing sensor and its job (`pi_stream_landing_sensor`/`_job` for the
    environment connection, `<name>__…` for a PIConnection)."""
    names = StreamNames.of(site)
    job = landing_job(names)
    op = op_name(names.key)

    @dg.sensor(
        name=names.named("pi_stream_landing_sensor"),
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Requests a {names.key.to_user_string()} run for every sealed spool segment waiting, one run at "
        "a time.",
        required_resource_keys={names.spool_key},
    )
    def _landing(context: dg.SensorEvaluationContext, **_called_with: object) -> dg.SensorResult:
        # Called directly (tests), Dagster also passes the required resources as keywords: read context.resources.
        return landing_tick(context, getattr(context.resources, names.spool_key), job.name, op)

    return _landing, job


def landing_tick(
    context: dg.SensorEvaluationContext, spool: SpoolResource, job_name: str, op: str
) -> dg.SensorResult:
    """One tick: a run for the segments waiting (or a retry of a failed batch), unless a landing run is in flight."""
    cursor = orjson.loads(context.cursor) if context.cursor else {"next_seq": 0, "pending": {}}
    ready = spool.reader().ready()
    # One landing run at a time: segments sealed meanwhile wait and go into the next run together, so the number
    # of runs (each costs a process start-up) adapts to how long a run takes, and batches never race each other
    # for the same Delta commit.
    in_flight = context.instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=UNFINISHED), limit=1
    )
    if in_flight:
        reason = f"landing run {in_flight[0].dagster_run.run_id} in flight; {len(ready)} segments waiting"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=orjson.dumps(cursor).decode())
    if spool.min_run_interval_s > 0:
        last = context.instance.get_run_records(dg.RunsFilter(job_name=job_name), limit=1)
        if last and time.time() - last[0].create_timestamp.timestamp() < spool.min_run_interval_s:
            reason = (
                f"less than {spool.min_run_interval_s:g} s since the last landing run; {len(ready)} waiting"
            )
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=orjson.dumps(cursor).decode())
    request = _retry(context, cursor, {s.seq: s for s in ready}, op)
    if request is None:
        fresh = [s for s in ready if s.seq >= cursor["next_seq"]][:MAX_SEGMENTS_PER_RUN]
        if fresh:
            key = _batch_key(fresh)
            request = _request(fresh, f"stream:{key}", key, op)
            cursor["pending"][key] = 0
            cursor["next_seq"] = fresh[-1].seq + 1
    text = orjson.dumps(cursor).decode()
    if request is None:
        reason = (
            f"{len(ready)} segments waiting for their requested run or Dagster's retry of it"
            if ready
            else "no sealed spool segment waiting"
        )
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=text)
    return dg.SensorResult(run_requests=[request], cursor=text)


pi_stream_landing_sensor, stream_landing_job = landing_sensor()
OP_NAME = op_name(STREAM_KEY)
