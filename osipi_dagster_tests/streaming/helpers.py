"""Test helpers for streaming: a loopback TCP proxy that can drop or stall connections, lake-vs-PI comparison, and
the real processes (listener, lander, Dagster daemon) with their commands.

The proxy stands between the listener and a real emulator so socket drops and half-open connections are real.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import deltalake
import orjson
import polars as pl

from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient

KEY = ["web_id", "timestamp", "ordinal"]
COMPARED = [*KEY, "value", "value_text", "digital_code", "is_system", "good"]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll `condition` until it is truthy (bounded); the failure names what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Proxy:
    """TCP proxy on 127.0.0.1: `cut()` closes every connection, `refuse` rejects new ones, `stall` stops forwarding
    while keeping sockets open (a half-open link: only the listener's silence timeout can notice it)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.refuse = False
        self.stall = False
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/piwebapi"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.accepted += 1
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.stall and not self._closed:
                    time.sleep(0.02)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self.stall = False
        self.server.close()
        self.cut()


def lake_rows(lake: Path, table: str = "pi_timeseries") -> pl.DataFrame:
    """The table read back with deltalake's own reader (independent of the code under test)."""
    return pl.from_arrow(deltalake.DeltaTable(str(lake / table)).to_pyarrow_table())  # type: ignore[return-value]


def recorded_between(api: str, web_ids: list[str], after: datetime, until: datetime) -> pl.DataFrame:
    """PI's recorded values with after < timestamp <= until (the spool's coverage semantics)."""
    with PIWebAPIClient(ClientConfig(base_url=api)) as client:
        frame = client.recorded(web_ids, after, until, include_end=True)
    return frame.filter(pl.col("timestamp") > after)


def assert_lake_equals_pi(lake: pl.DataFrame, pi: pl.DataFrame, after: datetime, until: datetime) -> None:
    """Exactly PI's values in (after, until]: no gap (missing key), no duplicate, no stray, same values."""
    dupes = lake.filter(pl.struct(KEY).is_duplicated())
    assert dupes.height == 0, f"{dupes.height} duplicated keys in the lake: {dupes.head(5)}"
    got = (
        lake.filter((pl.col("timestamp") > after) & (pl.col("timestamp") <= until)).select(COMPARED).sort(KEY)
    )
    want = pi.select(COMPARED).sort(KEY)
    missing = want.join(got, on=KEY, how="anti")
    extra = got.join(want, on=KEY, how="anti")
    assert missing.height == 0, (
        f"{missing.height} PI values missing from the lake (gap), e.g. {missing.head(5)}"
    )
    assert extra.height == 0, f"{extra.height} lake values PI does not have, e.g. {extra.head(5)}"
    assert got.equals(want), "same keys but different values between the lake and PI"


# -- real processes: listener, lander, Dagster daemon ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def stream_cmd(command: str, spool: Path, *args: str) -> list[str]:
    """`python -m osipi_dagster.lib.streaming <command> --spool DIR ...` with a free health port."""
    return [
        sys.executable,
        "-m",
        "osipi_dagster.lib.streaming",
        command,
        "--spool",
        str(spool),
        "--health-address",
        "127.0.0.1:0",
        "--log-level",
        "WARNING",
        *args,
    ]


class Processes:
    """Processes a test starts (each in its own session); `stop()` ends what is still running, by PID/group."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.started.append(proc)
        return proc

    @staticmethod
    def kill9(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and everything in its session (a daemon's code server and runs too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(20)

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever the process group still holds
            if proc.poll() is None:
                proc.wait(10)


def dagster_env(home: Path, **env: str) -> dict[str, str]:
    """Environment of a Dagster daemon on a scratch DAGSTER_HOME with the project's dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "PYTHONUNBUFFERED": "1", "DAGSTER_HOME": str(home), **env}


def start_sensor(name: str, env: dict[str, str]) -> None:
    """Turn a sensor on in the instance (the same command an operator runs once per deployment)."""
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "dagster"), "sensor", "start", name, "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=240,
    )


def daemon_cmd() -> list[str]:
    bin_dir = Path(sys.executable).parent
    return [str(bin_dir / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")]


def lander_commits(lake: Path, table: str = "pi_timeseries") -> dict[int, dict[str, object]]:
    """Delta version → the lander's report, for every lander commit (read with deltalake itself)."""
    from osipi_dagster.lib.streaming.landing import REPORT_KEY

    if not deltalake.DeltaTable.is_deltatable(str(lake / table)):
        return {}
    history = deltalake.DeltaTable(str(lake / table)).history()
    return {int(h["version"]): orjson.loads(h[REPORT_KEY]) for h in history if h.get(REPORT_KEY)}
