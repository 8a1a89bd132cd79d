"""Where alerts go: Slack (dagster-slack's `SlackResource`), Microsoft Teams (dagster-msteams' `MSTeamsResource` and
cards) and a generic JSON webhook. Each is optional; `AlertResource.deliver` sends one alert to all that are set.

Configured from the environment as EnvVar references, so tokens and webhook URLs never appear in run config or the UI.
Errors and skip messages name a destination's host only: the path (and query) of a Teams or generic webhook URL is its
secret, and the Slack token travels in a header that slack_sdk redacts in its logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import httpx
import requests
from dagster_msteams import Card, MSTeamsResource
from dagster_msteams.adaptive_card import AdaptiveCard
from dagster_msteams.utils import MSTeamsHyperlink, build_message_with_link
from dagster_slack import SlackResource
from slack_sdk.errors import SlackApiError, SlackClientError

from osipi_dagster.defs.env import env_vars
from osipi_dagster.lib.settings import SettingsError

ENV = {
    "slack_token": "OSIPI_SLACK_TOKEN",
    "slack_channel": "OSIPI_SLACK_CHANNEL",
    "slack_api_url": "OSIPI_SLACK_API_URL",
    "teams_webhook_url": "OSIPI_TEAMS_WEBHOOK_URL",
    "webhook_url": "OSIPI_ALERT_WEBHOOK_URL",
    "dagster_url": "OSIPI_DAGSTER_URL",
}
# urllib3 (under requests, used by dagster-msteams) logs each request line, path and query included, at DEBUG.
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


class AlertDeliveryError(Exception):
    """A destination did not accept an alert; the message names the destination by host, never by URL.
    `delivered` lists the destinations that did accept it."""

    def __init__(self, message: str, delivered: list[str] | None = None) -> None:
        super().__init__(message)
        self.delivered = delivered or []


@dataclass(frozen=True)
class Alert:
    title: str
    lines: tuple[str, ...]
    run_id: str

    def link(self, dagster_url: str | None) -> str | None:
        return f"{dagster_url.rstrip('/')}/runs/{self.run_id}" if dagster_url else None


def host(url: str | None) -> str:
    return urlsplit(url or "").hostname or "(no host)"


def webhook_payload(alert: Alert, dagster_url: str | None) -> dict[str, Any]:
    """The generic webhook body: Slack incoming-webhook keys (text, blocks) and a legacy Teams MessageCard, so one URL
    of either kind renders it; each ignores the other's keys."""
    lines = [*alert.lines, *filter(None, [alert.link(dagster_url)])]
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


def slack_blocks(alert: Alert, dagster_url: str | None) -> list[dict[str, Any]]:
    """Block Kit: a header, the lines, and a button to the run when the UI's URL is known."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(alert.lines)[:2900] or " "}},
    ]
    if link := alert.link(dagster_url):
        button = {"type": "button", "text": {"type": "plain_text", "text": "View in Dagster UI"}, "url": link}
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


def teams_card(alert: Alert, dagster_url: str | None, legacy: bool) -> dict[str, Any]:
    """dagster-msteams' card: a hero card for a legacy Office 365 connector, an Adaptive Card for a Workflows webhook."""
    card = Card() if legacy else AdaptiveCard()
    link = alert.link(dagster_url)
    text = "\n\n".join([f"**{alert.title}**", *alert.lines])
    card.add_attachment(
        build_message_with_link(legacy, text, MSTeamsHyperlink("View in Dagster UI", link) if link else None)
    )
    return card.payload


class _DropSecret(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(s in message for s in self.secrets)


@contextmanager
def _secret_kept_out_of_logs(url: str) -> Iterator[None]:
    """Drop urllib3's log records that would carry the URL's path or query while a request to `url` is made."""
    parts = urlsplit(url)
    secrets = [s for s in (parts.path, parts.query) if len(s) > 1]
    drop = _DropSecret(secrets)
    loggers = [logging.getLogger(name) for name in URLLIB3_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


class AlertResource(dg.ConfigurableResource):
    """Alert destinations. None configured means alerts are off (the sensors say so and move on)."""

    slack: SlackResource | None = None
    slack_channel: str | None = None
    # Slack's Web API base URL: unset means https://slack.com/api/ (GovSlack: https://slack-gov.com/api/).
    slack_api_url: str | None = None
    teams: MSTeamsResource | None = None
    # A Slack incoming webhook, a legacy Teams connector, or anything that takes JSON (see webhook_payload).
    webhook_url: str | None = None
    # Base URL of the Dagster UI, for links to the run.
    dagster_url: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertResource:
        fields: dict[str, Any] = env_vars(ENV, environ)
        token, hook = fields.pop("slack_token", None), fields.pop("teams_webhook_url", None)
        if token is not None and "slack_channel" not in fields:
            raise SettingsError(
                "OSIPI_SLACK_TOKEN is set but OSIPI_SLACK_CHANNEL is not: set the channel alerts go to (e.g. #pi-alerts)"
            )
        if token is not None:
            fields["slack"] = SlackResource(token=token)
        if hook is not None:
            fields["teams"] = MSTeamsResource(hook_url=hook, timeout=10.0)
        return cls(**fields)

    def destinations(self) -> list[str]:
        """What logs may say about where alerts go: a name and, for webhooks, the host only."""
        named = []
        if self.slack is not None:
            named.append("Slack")
        if self.teams is not None:
            named.append(f"Teams at {host(self.teams.hook_url)}")
        if self.webhook_url:
            named.append(f"webhook at {host(self.webhook_url)}")
        return named

    def deliver(self, alert: Alert) -> list[str]:
        """Send the alert to every configured destination; returns their names. If any refused it, the others still
        got it and AlertDeliveryError names each that failed and why."""
        senders = [
            (self.slack is not None, "Slack", self._to_slack),
            (self.teams is not None, "Teams", self._to_teams),
            (bool(self.webhook_url), "webhook", self._to_webhook),
        ]
        delivered, errors = [], []
        for configured, name, send in senders:
            if not configured:
                continue
            try:
                send(alert)
                delivered.append(name)
            except AlertDeliveryError as exc:
                errors.append(str(exc))
        if errors:
            raise AlertDeliveryError("; ".join(errors), delivered)
        return delivered

    def _to_slack(self, alert: Alert) -> None:
        assert self.slack is not None
        client = self.slack.get_client()
        client.timeout = int(self.timeout_s)
        if self.slack_api_url:
            client.base_url = self.slack_api_url.rstrip("/") + "/"
        text = "\n".join([alert.title, *alert.lines])
        try:
            client.chat_postMessage(
                channel=self.slack_channel, text=text, blocks=slack_blocks(alert, self.dagster_url)
            )
        except SlackApiError as exc:
            reason = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            raise AlertDeliveryError(
                f"Slack at {host(client.base_url)} refused the alert ({reason})"
            ) from None
        except (SlackClientError, OSError) as exc:  # OSError: urllib's URLError and timeouts
            raise AlertDeliveryError(
                f"Slack at {host(client.base_url)} unreachable ({type(exc).__name__})"
            ) from None

    def _to_teams(self, alert: Alert) -> None:
        assert self.teams is not None
        client = self.teams.get_client()
        where = f"Teams webhook at {host(self.teams.hook_url)}"
        payload = teams_card(alert, self.dagster_url, legacy=client.is_legacy_webhook())
        try:
            with _secret_kept_out_of_logs(self.teams.hook_url):
                client.post_message(payload)
        except requests.Timeout:
            raise AlertDeliveryError(f"{where} timed out after {self.teams.timeout:g} s") from None
        except requests.ConnectionError:
            raise AlertDeliveryError(f"{where} unreachable (ConnectionError)") from None
        except requests.RequestException as exc:
            # dagster-msteams raises RequestException(<response body>) for a refused post; other request errors
            # may quote the URL, so only their type is told.
            said = str(exc) if exc.request is None and exc.response is None else ""
            detail = (
                said[:200] if said and urlsplit(self.teams.hook_url).path not in said else type(exc).__name__
            )
            raise AlertDeliveryError(f"{where} refused the alert: {detail}") from None

    def _to_webhook(self, alert: Alert) -> None:
        assert self.webhook_url
        where = f"webhook at {host(self.webhook_url)}"
        # The transport, not httpx.Client: the client logs every request's full URL at INFO.
        request = httpx.Request(
            "POST",
            self.webhook_url,
            json=webhook_payload(alert, self.dagster_url),
            extensions={"timeout": httpx.Timeout(self.timeout_s).as_dict()},
        )
        try:
            with httpx.HTTPTransport() as transport:
                response = transport.handle_request(request)
                response.read()
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(f"{where} unreachable ({type(exc).__name__})") from None
        if response.status_code >= 300:
            raise AlertDeliveryError(f"{where} answered HTTP {response.status_code}")
