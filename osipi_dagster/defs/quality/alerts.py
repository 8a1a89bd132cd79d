"""Alerts: failed runs and failed asset checks posted to a Slack- or Teams-compatible webhook
(OSIPI_ALERT_WEBHOOK_URL, an EnvVar: the URL is a secret and never appears in logs, run config or the UI).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import httpx

from osipi_dagster.defs.env import env_vars

# Events older than this are dropped rather than delivered after a long webhook outage (the UI still has them).
MAX_ALERT_AGE_S = 24 * 3600
MAX_ALERTS_PER_TICK = 20
FETCH_LIMIT = 200
RUN_EVENTS = (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS)


class AlertWebhookResource(dg.ConfigurableResource):
    """Where alerts go. `webhook_url` unset means alerts are off (the sensor says so and moves on)."""

    webhook_url: str | None = None
    # Base URL of the Dagster UI, for links in messages (OSIPI_DAGSTER_URL, optional).
    dagster_url: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertWebhookResource:
        fields = {"webhook_url": "OSIPI_ALERT_WEBHOOK_URL", "dagster_url": "OSIPI_DAGSTER_URL"}
        return cls(**env_vars(fields, environ))

    def destination(self) -> str:
        """What logs may say about the webhook: its host only (the path of a Slack/Teams webhook is the secret)."""
        return urlsplit(self.webhook_url or "").hostname or "(no host)"

    def post(self, payload: dict[str, Any]) -> None:
        """POST the payload; raises AlertDeliveryError without the URL in its message."""
        assert self.webhook_url
        # The transport, not httpx.Client: the client logs every request's full URL at INFO, and the path of a
        # Slack/Teams webhook URL is its secret.
        request = httpx.Request(
            "POST",
            self.webhook_url,
            json=payload,
            extensions={"timeout": httpx.Timeout(self.timeout_s).as_dict()},
        )
        try:
            with httpx.HTTPTransport() as transport:
                response = transport.handle_request(request)
                response.read()
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(
                f"webhook at {self.destination()} unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code >= 300:
            raise AlertDeliveryError(f"webhook at {self.destination()} answered HTTP {response.status_code}")


class AlertDeliveryError(Exception):
    """The webhook did not accept an alert."""


@dataclass(frozen=True)
class Alert:
    storage_id: int
    timestamp: float
    title: str
    lines: list[str]
    run_id: str


def payload(alert: Alert, dagster_url: str | None) -> dict[str, Any]:
    """One JSON body both Slack (text + blocks) and Teams connectors (MessageCard) render; each ignores the other's
    keys."""
    lines = list(alert.lines)
    if dagster_url:
        lines.append(f"{dagster_url.rstrip('/')}/runs/{alert.run_id}")
    body = "\n".join(lines)
    return {
        "text": f"{alert.title}\n{body}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
        ],
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": alert.title,
        "title": alert.title,
        "themeColor": "D00000",
    }


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per failed asset check of the run: asset, check, severity and its key figures."""
    out = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if evaluation.passed:
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


def alerts_since(instance: dg.DagsterInstance, after: int) -> list[Alert]:
    """Finished runs after storage id `after`, oldest first: failed runs, and successful runs with failed checks."""
    from dagster._core.storage.event_log.base import EventLogCursor

    records = []
    for event_type in RUN_EVENTS:
        result = instance.fetch_run_status_changes(
            event_type,
            limit=FETCH_LIMIT,
            cursor=EventLogCursor.from_storage_id(after).to_string(),
            ascending=True,
        )
        records += result.records
    records.sort(key=lambda r: r.storage_id)
    alerts = []
    for record in records:
        entry = record.event_log_entry
        run = instance.get_run_by_id(entry.run_id)
        job = run.job_name if run else "?"
        partition = (run.tags.get("dagster/partition") if run else None) or ""
        where = f"{job}" + (f" [{partition}]" if partition else "")
        checks = failed_checks(instance, entry.run_id)
        if entry.dagster_event_type == dg.DagsterEventType.RUN_FAILURE:
            message = (entry.dagster_event.message if entry.dagster_event else None) or "run failed"
            alerts.append(
                Alert(
                    record.storage_id,
                    entry.timestamp,
                    f"Run failed: {where}",
                    [message, *checks],
                    entry.run_id,
                )
            )
        elif checks:
            title = f"{len(checks)} asset check(s) failed: {where}"
            alerts.append(Alert(record.storage_id, entry.timestamp, title, checks, entry.run_id))
        else:
            # Nothing to say about this run, but the cursor may move past it.
            alerts.append(Alert(record.storage_id, entry.timestamp, "", [], entry.run_id))
    return alerts


def evaluate(context: dg.SensorEvaluationContext, alerts: AlertWebhookResource) -> dg.SensorResult:
    """Deliver alerts in event order; the cursor (a storage id) only moves past what was delivered or dropped, so a
    webhook outage delays alerts instead of losing them, up to MAX_ALERT_AGE_S."""
    after = int(context.cursor) if context.cursor else None
    if after is None:
        # First tick: start from now, not from the instance's whole history.
        latest = [
            r.storage_id
            for t in RUN_EVENTS
            for r in context.instance.fetch_run_status_changes(t, limit=1, ascending=False).records
        ]
        return dg.SensorResult(skip_reason="alerts start from now", cursor=str(max(latest, default=0)))
    pending = alerts_since(context.instance, after)
    if not alerts.webhook_url:
        last = pending[-1].storage_id if pending else after
        return dg.SensorResult(
            skip_reason=f"OSIPI_ALERT_WEBHOOK_URL is not set: {sum(1 for a in pending if a.title)} alerts not sent",
            cursor=str(last),
        )
    sent = dropped = 0
    now = time.time()
    for alert in pending:
        if not alert.title:
            after = alert.storage_id
            continue
        if now - alert.timestamp > MAX_ALERT_AGE_S:
            dropped += 1
            after = alert.storage_id
            continue
        if sent == MAX_ALERTS_PER_TICK:
            break
        try:
            alerts.post(payload(alert, alerts.dagster_url))
        except AlertDeliveryError as exc:
            context.log.warning(f"alert not delivered, will retry next tick: {exc}")
            return dg.SensorResult(
                skip_reason=f"{exc}; {sent} sent, retrying from run {alert.run_id} next tick",
                cursor=str(after),
            )
        sent += 1
        after = alert.storage_id
    if dropped:
        context.log.warning(
            f"{dropped} alerts older than {MAX_ALERT_AGE_S // 3600} h dropped (webhook was down)"
        )
    return dg.SensorResult(
        skip_reason=f"{sent} alerts sent to {alerts.destination()}"
        + (f", {dropped} dropped" if dropped else ""),
        cursor=str(after),
    )


@dg.sensor(
    name="pi_alerts_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed runs and failed asset checks to OSIPI_ALERT_WEBHOOK_URL (Slack or Teams).",
)
def pi_alerts_sensor(context: dg.SensorEvaluationContext, alerts: AlertWebhookResource) -> dg.SensorResult:
    return evaluate(context, alerts)


@dg.definitions
def alert_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[pi_alerts_sensor], resources={"alerts": AlertWebhookResource.from_env()})
