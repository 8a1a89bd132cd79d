"""Shared machinery of the benchmark suite: emulators per scenario, metrics deltas, repeated timing, machine facts.

A `Figure` is one measured row of the report: its runs, median, spread and the exact command that reproduces it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mock_pi.process import Emulator, start_emulator  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
FROZEN = "2024-05-01T12:00:00Z"
LATENCY = "latency:20ms"
# Core pinning: on a machine with >= 2 cores the emulator (standing in for a PI Web API server, which runs on its own
# machine) gets CPU 0 and the code under test (the Dagster run, the ceiling replay, naive reads) gets CPU 1, so
# neither steals the other's core and the ratios compare like with like. OSIPI_BENCH_PIN=0 turns it off.
PIN = os.environ.get("OSIPI_BENCH_PIN", "1") != "0" and len(os.sched_getaffinity(0)) >= 2
SERVER_CPUS, CLIENT_CPUS = ({0}, {1}) if PIN else (None, None)
VERSIONS = ("dagster", "polars", "deltalake", "httpx", "orjson", "numpy", "pyarrow", "starlette", "uvicorn")


@dataclass
class Figure:
    """One row of the report. `runs` holds the per-run measurements (dicts with the same keys)."""

    scenario: str
    label: str
    latency_ms: int
    command: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def values(self, key: str) -> list[float]:
        return [float(r[key]) for r in self.runs if key in r]

    def median(self, key: str) -> float:
        vals = self.values(key)
        return statistics.median(vals) if vals else float("nan")

    def spread(self, key: str) -> tuple[float, float]:
        vals = self.values(key)
        return (min(vals), max(vals)) if vals else (float("nan"), float("nan"))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def emulator_args(tags: int, latency_ms: int, *extra: str) -> tuple[str, ...]:
    args = ["--seed", "42", "--tags", str(tags), "--clock", f"frozen:{FROZEN}", *extra]
    if latency_ms:
        args += ["--faults", f"latency:{latency_ms}ms"]
    return tuple(args)


def pin_process(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of `pid` to `cpus` (threads started later inherit it from their creator)."""
    if cpus is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


@contextmanager
def client_cpus() -> Iterator[None]:
    """Run the block (and the threads it starts) on the code-under-test core; restore the old mask after."""
    if CLIENT_CPUS is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CLIENT_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def emulator(tags: int, latency_ms: int, *extra: str) -> Iterator[Emulator]:
    with start_emulator(*emulator_args(tags, latency_ms, *extra), timeout=300) as emu:
        pin_process(emu.process.pid, SERVER_CPUS)
        yield emu


def reset_metrics(emu: Emulator) -> None:
    httpx.post(f"{emu.root}/metrics/reset", timeout=30).raise_for_status()


def metrics(emu: Emulator) -> dict[str, Any]:
    """GET /metrics: requests (total and per endpoint), bytes, values served since the last reset."""
    return dict(httpx.get(f"{emu.root}/metrics", timeout=30).json())


def emulator_cmd(tags: int, latency_ms: int, *extra: str) -> str:
    return "python -m mock_pi " + " ".join(emulator_args(tags, latency_ms, *extra))


def run_child(args: list[str], timeout_s: float) -> dict[str, Any]:
    """Run a bench child process and return its `RESULT {json}` line; its stderr is shown on failure."""
    pin = None if CLIENT_CPUS is None else (lambda: os.sched_setaffinity(0, CLIENT_CPUS))
    proc = subprocess.run(
        [PYTHON, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        check=False,
        preexec_fn=pin,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[len("RESULT ") :])
            if out.get("ok", True):
                return dict(out)
    raise RuntimeError(
        f"bench child {' '.join(args[:2])} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def machine() -> dict[str, Any]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pinned": PIN,
        "versions": versions,
    }
