"""Alerts: a failed run, or a successful run whose asset checks failed, becomes one message to every destination in
`AlertResource` (Slack, Teams, a generic webhook: alert_destinations.py). Only public Dagster APIs.

- `pi_run_failure_alerts` is Dagster's `run_failure_sensor`. Dagster keeps its cursor and, when delivery fails, still
  moves past the run (it never repeats a reaction) and fails the tick with our error, which names the run and the
  destination by host. The failed run's failed checks are in the same message.
- `pi_check_failure_alerts` reads successful runs with `fetch_run_status_changes` (Dagster has no check-failure
  sensor; Dagster+ alert policies are the hosted one). Its cursor is the storage id of the last run handled and moves
  only past what was delivered, so an outage of every destination delays check alerts instead of losing them.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from osipi_dagster.defs.quality.alert_destinations import ENV, Alert, AlertDeliveryError, AlertResource

# Check alerts older than this are dropped rather than delivered after a long outage (the UI still has them).
MAX_ALERT_AGE_S = 24 * 3600
MAX_ALERTS_PER_TICK = 20
FETCH_LIMIT = 200
NO_DESTINATION = (
    f"no alert destination is set ({ENV['slack_token']} + {ENV['slack_channel']}, "
    f"{ENV['teams_webhook_url']} or {ENV['webhook_url']})"
)


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per failed asset check of the run: asset, check, severity and its key figures."""
    out = []
    # DagsterInstance.all_logs: the reader Dagster's own RunFailureSensorContext.get_step_failure_events uses.
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.asset_check_evaluation
        if evaluation is None or evaluation.passed:
            continue
        figures = {
            k: v.value
            for k, v in evaluation.metadata.items()
            if k in ("offending", "mismatching_tags", "sample")
        }
        out.append(
            f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed "
            f"({evaluation.severity.value}) {json.dumps(figures, default=str)}"
        )
    return out


def where(run: dg.DagsterRun) -> str:
    partition = run.tags.get("dagster/partition")
    return run.job_name + (f" [{partition}]" if partition else "")


def step_error(event: dg.DagsterEvent) -> str:
    """`step: <first line of the user's error>`: the innermost cause, under Dagster's step-execution wrapper."""
    error = event.step_failure_data.error
    while error is not None and error.cause is not None:
        error = error.cause
    text = (error.message if error else "").strip() or "failed"
    return f"{event.step_key}: {text.splitlines()[0][:300]}"


def run_failure_alert(context: dg.RunFailureSensorContext) -> Alert:
    """The run's failure message, each failed step's error, and the run's failed checks."""
    run = context.dagster_run
    steps = [step_error(event) for event in context.get_step_failure_events()]
    message = context.failure_event.message or "run failed"
    lines = (message, *steps, *failed_checks(context.instance, run.run_id))
    return Alert(f"Run failed: {where(run)}", lines, run.run_id)


def check_failure_alert(instance: dg.DagsterInstance, run_id: str) -> Alert | None:
    """The failed checks of a successful run (a WARN check does not fail its run), or None when all passed."""
    checks = failed_checks(instance, run_id)
    run = instance.get_run_by_id(run_id)
    if not checks or run is None:
        return None
    return Alert(f"{len(checks)} asset check(s) failed: {where(run)}", tuple(checks), run_id)


@dg.run_failure_sensor(
    name="pi_run_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run (with its failed checks) to Slack, Teams and/or the alert webhook.",
)
def pi_run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertResource) -> dg.SkipReason | None:
    run_id = context.dagster_run.run_id
    if not alerts.destinations():
        return dg.SkipReason(f"{NO_DESTINATION}: failure of run {run_id} not sent")
    try:
        sent = alerts.deliver(run_failure_alert(context))
    except AlertDeliveryError as exc:
        raise AlertDeliveryError(
            f"alert for failed run {run_id} not delivered: {exc}"
            + (f" (delivered to {', '.join(exc.delivered)})" if exc.delivered else ""),
            exc.delivered,
        ) from None
    context.log.info(f"failure of run {run_id} sent to {', '.join(sent)}")
    return None  # None: Dagster records the reaction on the run and goes on to the next failed run


def _latest_success(instance: dg.DagsterInstance) -> int:
    records = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_SUCCESS, limit=1).records
    return records[0].storage_id if records else 0


@dg.sensor(
    name="pi_check_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts successful runs with failed asset checks (WARN or ERROR) to Slack, Teams and/or the alert webhook.",
)
def pi_check_failure_alerts(context: dg.SensorEvaluationContext, alerts: AlertResource) -> dg.SensorResult:
    """Deliver in event order; the cursor only moves past what was delivered (or dropped as too old)."""
    if context.cursor is None:  # first tick: start from now, not from the instance's whole history
        return dg.SensorResult(
            skip_reason="check alerts start from now", cursor=str(_latest_success(context.instance))
        )
    after = int(context.cursor)
    records = context.instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_SUCCESS, after_storage_id=after),
        limit=FETCH_LIMIT,
        ascending=True,
    ).records
    destinations = alerts.destinations()
    sent = dropped = 0
    notes: list[str] = []
    for record in records:
        alert = check_failure_alert(context.instance, record.event_log_entry.run_id)
        if alert is None:
            after = record.storage_id
            continue
        if not destinations or time.time() - record.timestamp > MAX_ALERT_AGE_S:
            dropped += 1
            after = record.storage_id
            continue
        if sent == MAX_ALERTS_PER_TICK:
            break
        try:
            alerts.deliver(alert)
        except AlertDeliveryError as exc:
            if not exc.delivered:  # nobody heard: keep the cursor before this run and retry next tick
                context.log.warning(f"check alert not delivered, will retry next tick: {exc}")
                return dg.SensorResult(
                    skip_reason=f"{exc}; {sent} sent, retrying from run {alert.run_id} next tick",
                    cursor=str(after),
                )
            notes.append(f"run {alert.run_id}: {exc}")  # some destinations have it: not sent twice to them
        sent += 1
        after = record.storage_id
    if not destinations:
        return dg.SensorResult(
            skip_reason=f"{NO_DESTINATION}: {dropped} check alerts not sent", cursor=str(after)
        )
    if dropped:
        context.log.warning(f"{dropped} check alerts older than {MAX_ALERT_AGE_S // 3600} h dropped")
    summary = f"{sent} check alerts sent to {', '.join(destinations)}" + (
        f", {dropped} dropped" if dropped else ""
    )
    return dg.SensorResult(skip_reason="; ".join([summary, *notes]), cursor=str(after))


@dg.definitions
def alert_definitions() -> dg.Definitions:
    return dg.Definitions(
        sensors=[pi_run_failure_alerts, pi_check_failure_alerts],
        resources={"alerts": AlertResource.from_env()},
    )
