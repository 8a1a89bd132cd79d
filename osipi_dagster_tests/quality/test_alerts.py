"""The alert sensor against a real HTTP receiver on 127.0.0.1: failed runs and failed checks are posted as
Slack/Teams JSON, a webhook outage delays alerts without losing them, and the webhook URL never reaches logs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from osipi_dagster.defs.quality.alerts import AlertWebhookResource, pi_alerts_sensor
from osipi_dagster_tests.emulator import free_port

SECRET_PATH = "/services/T000/B000/s3cr3t-token"


class Receiver:
    """A webhook receiver: records JSON bodies; `status` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status == 200:
                    receiver.bodies.append({"path": self.path, **json.loads(body)})
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


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


def tick(instance: dg.DagsterInstance, alerts: AlertWebhookResource, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts}) as context:
        return pi_alerts_sensor.evaluate_tick(context)


def test_failures_and_failed_checks_reach_the_webhook(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alerts = AlertWebhookResource(webhook_url=receiver.url, dagster_url="http://dagster.local:3000")
    with dg.instance_for_test() as instance:
        assert not failing_job.execute_in_process(instance=instance, raise_on_error=False).success
        start = tick(instance, alerts, None)  # starts from now: history is not replayed
        assert start.skip_message == "alerts start from now" and receiver.bodies == []

        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        checked = dg.materialize([plant_data], instance=instance)
        assert checked.success  # a WARN check does not fail the run, but people must hear about it

        sent = tick(instance, alerts, start.cursor)
        assert sent.skip_message == "2 alerts sent to 127.0.0.1"
        assert [b["title"] for b in receiver.bodies] == [
            "Run failed: failing_job",
            "1 asset check(s) failed: __ephemeral_asset_job__",
        ]
        first = receiver.bodies[0]
        assert first["path"] == SECRET_PATH
        assert first["@type"] == "MessageCard" and first["blocks"][0]["type"] == "header"
        assert "RuntimeError" in first["text"] or "explode" in first["text"]
        assert f"http://dagster.local:3000/runs/{failed.run_id}" in first["text"]
        assert 'check plant_data:good_share failed (WARN) {"offending": 3}' in receiver.bodies[1]["text"]

        # A second tick with the advanced cursor sends nothing again.
        again = tick(instance, alerts, sent.cursor)
        assert again.skip_message == "0 alerts sent to 127.0.0.1" and len(receiver.bodies) == 2
        assert "s3cr3t" not in caplog.text


def test_webhook_outage_delays_alerts_without_losing_them(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with dg.instance_for_test() as instance:
        up = AlertWebhookResource(webhook_url=receiver.url)
        start = tick(instance, up, None)
        failing_job.execute_in_process(instance=instance, raise_on_error=False)
        failing_job.execute_in_process(instance=instance, raise_on_error=False)

        receiver.status = 503
        refused = tick(instance, up, start.cursor)
        assert refused.cursor == start.cursor  # nothing delivered: the cursor stays
        assert "answered HTTP 503" in (refused.skip_message or "")

        nobody = AlertWebhookResource(webhook_url=f"http://127.0.0.1:{free_port()}{SECRET_PATH}")
        down = tick(instance, nobody, start.cursor)
        assert down.cursor == start.cursor
        assert "unreachable (ConnectError)" in (down.skip_message or "")

        receiver.status = 200
        recovered = tick(instance, up, refused.cursor)
        assert recovered.skip_message == "2 alerts sent to 127.0.0.1"
        assert [b["title"] for b in receiver.bodies] == ["Run failed: failing_job"] * 2
        assert int(recovered.cursor) > int(start.cursor)
        for text in (caplog.text, refused.skip_message, down.skip_message):
            assert "s3cr3t" not in text and SECRET_PATH not in text


def test_without_a_webhook_the_sensor_says_so_and_moves_on() -> None:
    with dg.instance_for_test() as instance:
        off = AlertWebhookResource()
        start = tick(instance, off, None)
        failing_job.execute_in_process(instance=instance, raise_on_error=False)
        result = tick(instance, off, start.cursor)
        assert result.skip_message == "OSIPI_ALERT_WEBHOOK_URL is not set: 1 alerts not sent"
        assert int(result.cursor) > int(start.cursor)


def test_webhook_url_comes_from_the_environment_as_envvar() -> None:
    resource = AlertWebhookResource.from_env({"OSIPI_ALERT_WEBHOOK_URL": "https://hooks.slack.com/x"})
    assert isinstance(resource.webhook_url, dg.EnvVar) and resource.webhook_url == "OSIPI_ALERT_WEBHOOK_URL"
    assert AlertWebhookResource.from_env({}).webhook_url is None
