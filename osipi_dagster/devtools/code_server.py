"""A long-lived `dagster code-server start` on loopback, started with the image's own arguments, and a workspace file
pointing the daemon and the UI at it (the streaming benchmark and the deploy test run Dagster as deployed).

The image's command comes from its Dockerfile's `CMD` and the workspace from `deploy/workspace.code-server.yaml`;
only the host and port are replaced (127.0.0.1 and a free port).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from osipi_dagster.devtools.postgres import free_port

BIN = Path(sys.executable).parent


def image_command(dockerfile: Path) -> list[str]:
    """The Dockerfile's last `CMD` in exec form: ["dagster", "code-server", "start", "-h", H, "-p", P, ...]."""
    return list(json.loads(dockerfile.read_text().rsplit("CMD ", 1)[1].splitlines()[0]))


@dataclass
class CodeServer:
    proc: subprocess.Popen[bytes]
    port: int
    workspace: Path


def start_code_server(
    dockerfile: Path,
    workspace_template: Path,
    work: Path,
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes] | int = subprocess.DEVNULL,
    timeout_s: float = 300.0,
) -> CodeServer:
    """Start the image's code server on 127.0.0.1 (its own process group), write `work/workspace.yaml` from the
    template with that port, and return once it answers its health check (RuntimeError if it exits first)."""
    command = image_command(dockerfile)
    if command[:3] != ["dagster", "code-server", "start"] or command[3] != "-h" or command[5] != "-p":
        raise ValueError(
            f"{dockerfile}: CMD is not `dagster code-server start -h HOST -p PORT ...`: {command}"
        )
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "dagster"), *command[1:4], "127.0.0.1", "-p", str(port), *command[7:]],
        cwd=cwd,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workspace = yaml.safe_load(workspace_template.read_text())
    [entry] = workspace["load_from"]
    entry["grpc_server"].update(host="127.0.0.1", port=port)
    path = work / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace))
    check = [str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)]
    deadline = time.monotonic() + timeout_s
    while subprocess.run(check, env=dict(env), capture_output=True, timeout=60).returncode != 0:
        if proc.poll() is not None:
            raise RuntimeError(f"the code server exited with {proc.returncode} before it served")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the code server did not serve within {timeout_s:.0f} s")
        time.sleep(0.5)  # between two polls of the server's health
    return CodeServer(proc, port, path)
