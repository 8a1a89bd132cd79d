"""The code location through Dagster's own CLIs, as a user and CI run them (real subprocesses).

`dg check defs` must pass with no environment; a set-but-invalid variable must fail the load by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PI_VARS = ("PI_", "OSIPI_")


def run(args: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PI_VARS)}
    env.update(extra)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_dg_check_defs_passes_without_any_setting() -> None:
    done = run([str(BIN / "dg"), "check", "defs"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_definitions_validate_fails_fast_on_a_bad_setting() -> None:
    done = run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], PI_VERIFY_TLS="maybe"
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "PI_VERIFY_TLS='maybe' is not a boolean" in output
