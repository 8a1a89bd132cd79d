"""The `osipi` CLI run as a user runs it: a subprocess (the installed console script) against real emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from osipi_dagster_tests.emulator import PROJECT_ROOT, Emulator, start_emulator

SCRIPT = Path(sys.executable).parent / "osipi"
# 6,100 elements per database put 1,220 children under one collection element (two pages of 1,000).
WIDE_ARGS = ("--seed", "11", "--tags", "60", "--clock", "real", "--elements-per-db", "6100")
WIDE_ELEMENT = "\\\\PIAF01\\Plant Operations\\Contoso Chemicals\\Custody Metering"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    @property
    def flat(self) -> str:
        """stdout with runs of whitespace collapsed (column widths vary with the content)."""
        return " ".join(self.out.split())

    def json(self) -> Any:
        return json.loads(self.out)


def osipi(*args: str, **env: str) -> Run:
    """`osipi ARGS` with only the given PI_* variables (the caller's are dropped)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PI_", "OSIPI_"))}
    environ.update(env)
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "osipi_dagster.cli"]
    done = subprocess.run(
        [*command, *args],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def wide_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Real clock (so the clock check passes), 60 tags, and an AF element with 1,220 children."""
    with start_emulator(*WIDE_ARGS, log_dir=tmp_path_factory.mktemp("emulator")) as emu:
        yield emu
