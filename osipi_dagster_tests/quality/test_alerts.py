"""The alert sensors on a real Dagster instance against a real HTTP receiver on 127.0.0.1, which plays Slack's Web
API (through dagster-slack), a Teams Workflows webhook (through dagster-msteams) and a generic webhook.

A failed run and a failed check each reach every destination exactly once, re-ticks send nothing again, an unreachable
or refusing destination gives a clear error naming it by host, and no token or webhook path reaches logs or errors.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from osipi_dagster.defs.quality.alert_destinations import AlertResource
from osipi_dagster.defs.quality.alerts import pi_check_failure_alerts, pi_run_failure_alerts
from osipi_dagster.lib.settings import SettingsError
from osipi_dagster_tests.emulator import free_port

WEBHOOK_PATH = "/services/T000/B000/s3cr3t-webhook"
TEAMS_PATH = "/workflows/s3cr3t-flow/triggers/manual/paths/invoke"
TEAMS_QUERY = "api-version=2016-06-01&sig=s3cr3t-sig"
SLACK_TOKEN = "xoxb-s3cr3t-token"
SECRETS = ("s3cr3t", WEBHOOK_PATH, TEAMS_PATH, SLACK_TOKEN)


class Receiver:
    """Records each POST as {"path", "auth", "body"}; `status` (and `slack_error`) is what it answers."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.slack_error: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                slack = self.path.startswith("/api/")
                answer = {"ok": receiver.slack_error is None, "error": receiver.slack_error} if slack else {}
                if receiver.status == 200 and answer.get("ok", True):
                    receiver.posts.append(
                        {"path": self.path, "auth": self.headers["Authorization"], "body": body}
                    )
                data = json.dumps(answer).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path_prefix: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["path"].startswith(path_prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def all_destinations(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> AlertResource:
    """Every destination configured the way a deployment does it: environment variables read as EnvVars."""
    env = {
        "OSIPI_SLACK_TOKEN": SLACK_TOKEN,
        "OSIPI_SLACK_CHANNEL": "#pi-alerts",
        "OSIPI_SLACK_API_URL": f"{receiver.base}/api/",
        "OSIPI_TEAMS_WEBHOOK_URL": f"{receiver.base}{TEAMS_PATH}?{TEAMS_QUERY}",
        "OSIPI_ALERT_WEBHOOK_URL": f"{receiver.base}{WEBHOOK_PATH}",
        "OSIPI_DAGSTER_URL": "http://dagster.local:3000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return AlertResource.from_env()


@dg.op
def explode() -> None:
    raise RuntimeError("PI Web API returned 503 for GET /streamsets/recorded")


@dg.job
def failing_job() -> None:
    explode()


@dg.asset(check_specs=[dg.AssetCheckSpec("good_share", asset="plant_data")])
def plant_data() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="good_share",
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"offending": 3},
            )
        ]
    )


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, alerts: AlertResource, cursor: str | None
) -> Any:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts}) as context:
        return sensor.evaluate_tick(context)


def start(instance: dg.DagsterInstance, alerts: AlertResource) -> dict[str, str]:
    """First ticks of both sensors: they start from now, history is not replayed."""
    return {
        s.name: tick(s, instance, alerts, None).cursor
        for s in (pi_run_failure_alerts, pi_check_failure_alerts)
    }


def assert_no_secret(*texts: str | None) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in (text or "")


def test_failed_run_and_failed_check_reach_every_destination_once(
    receiver: Receiver, all_destinations: AlertResource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alerts = all_destinations
    with dg.instance_for_test() as instance:
        assert not failing_job.execute_in_process(instance=instance, raise_on_error=False).success
        cursors = start(instance, alerts)
        assert receiver.posts == []

        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        checked = dg.materialize([plant_data], instance=instance)
        assert checked.success  # a WARN check does not fail the run, but people must hear about it

        on_failure = tick(pi_run_failure_alerts, instance, alerts, cursors["pi_run_failure_alerts"])
        assert [(r.dagster_run.run_id, r.error) for r in on_failure.dagster_run_reactions] == [
            (failed.run_id, None)
        ]
        on_checks = tick(pi_check_failure_alerts, instance, alerts, cursors["pi_check_failure_alerts"])
        assert (
            on_checks.skip_message == "1 check alerts sent to Slack, Teams at 127.0.0.1, webhook at 127.0.0.1"
        )

        # Slack: chat.postMessage with the bot token as a bearer header, to the configured channel.
        slack = [p["body"] for p in receiver.to("/api/chat.postMessage")]
        assert [b["blocks"][0]["text"]["text"] for b in slack] == [
            "Run failed: failing_job",
            "1 asset check(s) failed: __ephemeral_asset_job__",
        ]
        assert {p["auth"] for p in receiver.to("/api/")} == {f"Bearer {SLACK_TOKEN}"}
        assert {b["channel"] for b in slack} == {"#pi-alerts"}
        assert "explode: RuntimeError: PI Web API returned 503" in slack[0]["text"]
        link = f"http://dagster.local:3000/runs/{failed.run_id}"
        assert slack[0]["blocks"][-1]["elements"][0]["url"] == link
        # Teams: dagster-msteams' Adaptive Card (a Workflows webhook), posted to the full URL, query included.
        teams = receiver.to(TEAMS_PATH)
        assert [p["path"] for p in teams] == [f"{TEAMS_PATH}?{TEAMS_QUERY}"] * 2
        texts = [p["body"]["attachments"][0]["content"]["body"][0]["text"] for p in teams]
        assert (
            texts[0].startswith("**Run failed: failing_job**") and f"[View in Dagster UI]({link})" in texts[0]
        )
        assert 'check plant_data:good_share failed (WARN) {"offending": 3}' in texts[1]
        # The generic webhook: one body that Slack incoming webhooks and legacy Teams connectors both render.
        hooks = [p["body"] for p in receiver.to(WEBHOOK_PATH)]
        assert [b["title"] for b in hooks] == [
            "Run failed: failing_job",
            "1 asset check(s) failed: __ephemeral_asset_job__",
        ]
        assert hooks[0]["@type"] == "MessageCard" and hooks[0]["blocks"][0]["type"] == "header"
        assert link in hooks[0]["text"]
        assert len(receiver.posts) == 6

        # Re-ticks from the advanced cursors send nothing again.
        again = tick(pi_run_failure_alerts, instance, alerts, on_failure.cursor)
        assert again.dagster_run_reactions == [] and again.cursor == on_failure.cursor
        again = tick(pi_check_failure_alerts, instance, alerts, on_checks.cursor)
        assert again.skip_message.startswith("0 check alerts sent") and again.cursor == on_checks.cursor
        assert len(receiver.posts) == 6
        assert_no_secret(caplog.text)


def test_an_unreachable_destination_fails_the_tick_with_a_clear_message(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}"
    teams_down = AlertResource(
        teams={"hook_url": f"{dead}{TEAMS_PATH}?{TEAMS_QUERY}"}, webhook_url=f"{receiver.base}{WEBHOOK_PATH}"
    )
    slack_down = AlertResource(
        slack={"token": SLACK_TOKEN}, slack_channel="#pi-alerts", slack_api_url=f"{dead}/api/"
    )
    with dg.instance_for_test() as instance:
        cursors = start(instance, teams_down)
        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)

        result = tick(pi_run_failure_alerts, instance, teams_down, cursors["pi_run_failure_alerts"])
        (reaction,) = result.dagster_run_reactions
        assert reaction.error is not None
        assert reaction.error.message.strip() == (
            f"osipi_dagster.defs.quality.alert_destinations.AlertDeliveryError: alert for failed run {failed.run_id} "
            "not delivered: Teams webhook at 127.0.0.1 unreachable (ConnectionError) (delivered to webhook)"
        )
        assert [p["body"]["title"] for p in receiver.posts] == ["Run failed: failing_job"]
        # Dagster's rule for run status sensors: a reaction is not repeated, so the cursor moved past the run.
        assert tick(pi_run_failure_alerts, instance, teams_down, result.cursor).dagster_run_reactions == []

        slack = tick(pi_run_failure_alerts, instance, slack_down, cursors["pi_run_failure_alerts"])
        (reaction,) = slack.dagster_run_reactions
        assert "not delivered: Slack at 127.0.0.1 unreachable (URLError)" in reaction.error.message
        assert_no_secret(
            caplog.text, reaction.error.to_string(), result.dagster_run_reactions[0].error.to_string()
        )


def test_slack_refusing_the_message_says_why(receiver: Receiver) -> None:
    receiver.slack_error = "channel_not_found"
    alerts = AlertResource(
        slack={"token": SLACK_TOKEN}, slack_channel="#gone", slack_api_url=f"{receiver.base}/api"
    )
    with dg.instance_for_test() as instance:
        cursors = start(instance, alerts)
        failing_job.execute_in_process(instance=instance, raise_on_error=False)
        (reaction,) = tick(
            pi_run_failure_alerts, instance, alerts, cursors["pi_run_failure_alerts"]
        ).dagster_run_reactions
    assert "Slack at 127.0.0.1 refused the alert (channel_not_found)" in reaction.error.message
    assert receiver.posts == []


def test_check_alerts_wait_out_an_outage_without_loss_or_duplicates(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    up = AlertResource(webhook_url=f"{receiver.base}{WEBHOOK_PATH}")
    with dg.instance_for_test() as instance:
        cursor = start(instance, up)["pi_check_failure_alerts"]
        dg.materialize([plant_data], instance=instance)
        dg.materialize([plant_data], instance=instance)

        receiver.status = 503
        refused = tick(pi_check_failure_alerts, instance, up, cursor)
        assert refused.cursor == cursor  # nothing delivered: the cursor stays
        assert "webhook at 127.0.0.1 answered HTTP 503" in refused.skip_message

        nobody = AlertResource(webhook_url=f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}")
        down = tick(pi_check_failure_alerts, instance, nobody, cursor)
        assert (
            down.cursor == cursor and "webhook at 127.0.0.1 unreachable (ConnectError)" in down.skip_message
        )

        receiver.status = 200
        recovered = tick(pi_check_failure_alerts, instance, up, refused.cursor)
        assert recovered.skip_message == "2 check alerts sent to webhook at 127.0.0.1"
        assert len(receiver.posts) == 2 and int(recovered.cursor) > int(cursor)
        assert_no_secret(caplog.text, refused.skip_message, down.skip_message)


def test_without_a_destination_the_sensors_say_so_and_move_on() -> None:
    off = AlertResource()
    with dg.instance_for_test() as instance:
        cursors = start(instance, off)
        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        dg.materialize([plant_data], instance=instance)
        failure = tick(pi_run_failure_alerts, instance, off, cursors["pi_run_failure_alerts"])
        checks = tick(pi_check_failure_alerts, instance, off, cursors["pi_check_failure_alerts"])
    assert failure.skip_message == (
        "no alert destination is set (OSIPI_SLACK_TOKEN + OSIPI_SLACK_CHANNEL, OSIPI_TEAMS_WEBHOOK_URL or "
        f"OSIPI_ALERT_WEBHOOK_URL): failure of run {failed.run_id} not sent"
    )
    assert failure.cursor != cursors["pi_run_failure_alerts"]
    assert checks.skip_message.endswith(": 1 check alerts not sent")
    assert int(checks.cursor) > int(cursors["pi_check_failure_alerts"])


def test_destinations_come_from_the_environment_as_envvars() -> None:
    env = {
        "OSIPI_SLACK_TOKEN": SLACK_TOKEN,
        "OSIPI_SLACK_CHANNEL": "#pi-alerts",
        "OSIPI_TEAMS_WEBHOOK_URL": "https://example.webhook.office.com/webhookb2/x",
        "OSIPI_ALERT_WEBHOOK_URL": "https://hooks.slack.com/x",
    }
    resource = AlertResource.from_env(env)
    assert resource.slack is not None and resource.teams is not None
    for value, name in [
        (resource.slack.token, "OSIPI_SLACK_TOKEN"),
        (resource.slack_channel, "OSIPI_SLACK_CHANNEL"),
        (resource.teams.hook_url, "OSIPI_TEAMS_WEBHOOK_URL"),
        (resource.webhook_url, "OSIPI_ALERT_WEBHOOK_URL"),
    ]:
        assert isinstance(value, dg.EnvVar) and value == name
    empty = AlertResource.from_env({})
    assert (empty.slack, empty.teams, empty.webhook_url, empty.destinations()) == (None, None, None, [])
    with pytest.raises(SettingsError, match="OSIPI_SLACK_TOKEN is set but OSIPI_SLACK_CHANNEL is not"):
        AlertResource.from_env({"OSIPI_SLACK_TOKEN": SLACK_TOKEN})
