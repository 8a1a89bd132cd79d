"""Run the emulator as a separate process on 127.0.0.1: start, wait for /health, stop (tests, benchmarks, demo).

Each emulator is a `python -m mock_pi` process on a free loopback port; readiness is polled on /health.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The directory holding the mock_pi package, so `python -m mock_pi` works from any current directory.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@dataclass
class Emulator:
    """A running emulator process."""

    port: int
    process: subprocess.Popen[bytes]
    args: tuple[str, ...]
    log_path: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def scheme(self) -> str:
        """'https' when started with --tls-cert (links, channels and /health are then https:// and wss://)."""
        return "https" if "--tls-cert" in self.args else "http"

    @property
    def root(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.root}/piwebapi"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            stop_process(self.process)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    *cli_args: str, timeout: float = 30.0, log_dir: Path | None = None, port: int | None = None
) -> Emulator:
    """Run `python -m mock_pi --port <port or a free one> *cli_args` and wait until GET /health answers 200."""
    port = free_port() if port is None else port
    args = ("--port", str(port), *cli_args)
    log_path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"mock_pi_{port}.log"
        out = open(log_path, "wb")  # noqa: SIM115 - the child owns it for its lifetime
    else:
        out = subprocess.DEVNULL
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_pi", *args],
        cwd=PACKAGE_PARENT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    emu = Emulator(port=port, process=proc, args=args, log_path=log_path)
    deadline = time.monotonic() + timeout
    # Readiness only: a TLS emulator's (throwaway) certificate is what its tests check, not this poll.
    with httpx.Client(timeout=2.0, verify=False) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mock_pi exited with code {proc.returncode} before it was ready: {emu.log()[-2000:]}"
                )
            try:
                if http.get(f"{emu.root}/health").status_code == 200:
                    return emu
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                emu.stop()
                raise TimeoutError(
                    f"mock_pi on port {port} not ready within {timeout} s: {emu.log()[-2000:]}"
                )
            time.sleep(0.05)  # polling interval of a bounded readiness wait, not synchronisation
