"""The landing sensor: one micro-batch run per group of sealed spool segments, and a retry for failed batches.

Cursor = the next segment sequence not yet requested; run_key = the batch's segment range, so a batch is requested
once (run keys are remembered forever) and only an explicit retry (new key suffix) runs it again.
"""

from __future__ import annotations

import dagster as dg
import orjson

from osipi_dagster.defs.streaming import assets
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.streaming import Segment

stream_landing_job = dg.define_asset_job(
    "pi_stream_landing_job",
    selection=[assets.STREAM_KEY],
    description="Land sealed spool segments (given in run config) into pi_timeseries.",
)

BATCH_TAG = "osipi/stream_batch"
OP_NAME = assets.pi_timeseries_stream.op.name
# Enough segments per run to keep up after a backlog, few enough that one run stays seconds long.
MAX_SEGMENTS_PER_RUN = 50
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _batch_key(batch: list[Segment]) -> str:
    return f"{batch[0].seq}-{batch[-1].seq}"


def _request(batch: list[Segment], run_key: str, key: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        run_config=dg.RunConfig(ops={OP_NAME: {"config": {"segments": [s.name for s in batch]}}}),
        tags={BATCH_TAG: key},
    )


@dg.sensor(
    job=stream_landing_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a pi_timeseries_stream run whenever the channel listener has sealed spool segments.",
)
def pi_stream_landing_sensor(context: dg.SensorEvaluationContext, spool: SpoolResource) -> dg.SensorResult:
    cursor = orjson.loads(context.cursor) if context.cursor else {"next_seq": 0, "pending": {}}
    ready = spool.reader().ready()
    fresh = [s for s in ready if s.seq >= cursor["next_seq"]]
    requests = []
    for i in range(0, len(fresh), MAX_SEGMENTS_PER_RUN):
        batch = fresh[i : i + MAX_SEGMENTS_PER_RUN]
        key = _batch_key(batch)
        requests.append(_request(batch, f"stream:{key}", key))
        cursor["pending"][key] = 0
    if fresh:
        cursor["next_seq"] = fresh[-1].seq + 1
    # Batches requested before whose segments are still in ready/: if no run of theirs is unfinished, the last
    # one failed or was lost, so request the same segments again under a new run key.
    ready_seqs = {s.seq for s in ready}
    by_seq = {s.seq: s for s in ready}
    for key, attempt in list(cursor["pending"].items()):
        lo, hi = (int(x) for x in key.split("-"))
        left = [by_seq[q] for q in range(lo, hi + 1) if q in ready_seqs]
        if not left:
            del cursor["pending"][key]  # landed: the cursor keeps only live batches
            continue
        if attempt == 0 and any(r.run_key == f"stream:{key}" for r in requests):
            continue  # requested by this very tick
        unfinished = context.instance.get_run_records(
            dg.RunsFilter(tags={BATCH_TAG: key}, statuses=UNFINISHED), limit=1
        )
        if unfinished:
            continue
        started = context.instance.get_run_records(dg.RunsFilter(tags={BATCH_TAG: key}), limit=1)
        if not started:
            continue  # requested but not yet launched by the daemon
        attempt += 1
        cursor["pending"][key] = attempt
        batch = [by_seq[q] for q in range(lo, hi + 1) if q in ready_seqs]
        requests.append(_request(batch, f"stream:{key}#retry{attempt}", key))
    text = orjson.dumps(cursor).decode()
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no sealed spool segment waiting"), cursor=text)
    return dg.SensorResult(run_requests=requests, cursor=text)
