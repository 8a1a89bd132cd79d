"""Benchmark of streaming end to end: 10,000 subscribed tags → listener → spool → Dagster sensor → run → Delta.

`--mode dagster` (default) measures the production path: a real `dagster-daemon` on a scratch DAGSTER_HOME with
`pi_stream_landing_sensor` turned on; `--mode direct` calls land_segments() in this process (the landing's own cost).
Latency is per value, over ALL values landed in the measured window: the Delta commit time of the row's batch (from
the Delta log, found by the batch's `ingested_at`) minus its PI timestamp (emulator on a real-time clock). Also
prints values/s, runs per hour, run launch overhead and the CPU used by Dagster (daemon, code server, runs).
Run: .venv/bin/python bench/bench_streaming.py [--tags 10000] [--seconds 300] [--warmup 60] [--mode dagster]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import deltalake
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mock_pi.process import start_emulator  # noqa: E402
from osipi_dagster.lib.lake import Lake  # noqa: E402
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient  # noqa: E402
from osipi_dagster.lib.streaming import SpoolReader, land_segments  # noqa: E402
from osipi_dagster.lib.streaming.landing import INGESTED_AT_KEY  # noqa: E402

BIN = Path(sys.executable).parent
JOB = "pi_stream_landing_job"
SENSOR = "pi_stream_landing_sensor"
TICK = os.sysconf("SC_CLK_TCK")
# How the daemon's processes are told apart in their command lines.
PROCESS_KINDS = ("dagster-daemon run", "api grpc", "multiprocessing.spawn", "tail -F")


class CpuSampler:
    """CPU seconds of every process in a session (the daemon's: it, its code server and the runs it launches),
    from /proc every `period` s; a short-lived process loses at most its last period."""

    def __init__(self, session: int, period: float = 0.2) -> None:
        self.session = session
        self.period = period
        self.cpu: dict[tuple[int, int], float] = {}
        self.commands: dict[tuple[int, int], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[3]) != self.session:  # field 6 (session id), counted after the command name
                continue
            key = (int(entry.name), int(fields[19]))  # pid, start time
            self.cpu[key] = max(self.cpu.get(key, 0.0), (int(fields[11]) + int(fields[12])) / TICK)
            if key not in self.commands:
                try:
                    cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    cmd = ""
                self.commands[key] = cmd

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()

    def start(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def total(self, match: Callable[[str], bool] = lambda _: True) -> float:
        return sum(v for k, v in self.cpu.items() if match(self.commands.get(k, "")))


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a process started with start_new_session and everything it left in its process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children a signalled daemon may leave behind
    if proc.poll() is None:
        proc.wait(10)


def per_value_latency(lake: Path, since: datetime, until: datetime) -> pl.DataFrame:
    """Streamed rows with PI timestamp in [since, until] and their commit time (from the Delta log)."""
    table = deltalake.DeltaTable(str(lake / "pi_timeseries"))
    commits = pl.DataFrame(
        [
            {"ingested_at": datetime.fromisoformat(h[INGESTED_AT_KEY]), "committed_ms": int(h["timestamp"])}
            for h in table.history()
            if h.get(INGESTED_AT_KEY)
        ],
        schema={"ingested_at": pl.Datetime("us", "UTC"), "committed_ms": pl.Int64},
    ).unique("ingested_at")
    rows = pl.from_arrow(table.to_pyarrow_table(columns=["web_id", "timestamp", "source", "ingested_at"]))
    assert isinstance(rows, pl.DataFrame)
    return (
        rows.filter((pl.col("source") == "stream") & pl.col("timestamp").is_between(since, until))
        .join(commits, on="ingested_at", how="left")
        .with_columns(
            ((pl.col("committed_ms") * 1000 - pl.col("timestamp").dt.epoch("us")) / 1e6).alias("lat_s")
        )
    )


def start_dagster(work: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    workspace = ["-w", str(ROOT / "workspace.yaml")]
    # The sensor ships STOPPED; this is the same command an operator runs once per deployment.
    subprocess.run(
        [str(BIN / "dagster"), "sensor", "start", SENSOR, *workspace], cwd=ROOT, env=env, check=True
    )
    log = open(work / "daemon.log", "wb")  # noqa: SIM115 - kept open for the daemon's lifetime
    return subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", *workspace],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run_records(home: Path) -> list[object]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_run_records(dg.RunsFilter(job_name=JOB)))


def unfinished(home: Path) -> bool:
    import dagster as dg

    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    return any(r.dagster_run.status not in done for r in run_records(home))  # type: ignore[attr-defined]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tags", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=300.0, help="measured window, after the warm-up")
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--mode", choices=["dagster", "direct"], default="dagster")
    p.add_argument("--batch-s", type=float, default=2.0, help="direct mode: land every this many seconds")
    p.add_argument("--segment-age", type=float, default=1.0)
    p.add_argument("--min-run-interval", type=float, default=0.0, help="OSIPI_STREAM_MIN_RUN_INTERVAL_S")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_streaming_"))
    spool_dir, lake_dir = work / "spool", work / "lake"
    emu_args = ("--tags", str(args.tags), "--channel-poll-ms", "1000")
    daemon: subprocess.Popen[bytes] | None = None
    sampler: CpuSampler | None = None
    with start_emulator(*emu_args, timeout=180) as emu:
        with PIWebAPIClient(ClientConfig(base_url=emu.api)) as pi:
            ids = [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PI_WEB_API_URL": emu.api,
            "OSIPI_LAKE_URI": str(lake_dir),
            "OSIPI_STREAM_SPOOL": str(spool_dir),
            "DAGSTER_HOME": str(work / "dagster_home"),
            "OSIPI_STREAM_MIN_RUN_INTERVAL_S": str(args.min_run_interval),
        }
        cmd = [str(BIN / "python"), "-m", "osipi_dagster.lib.streaming", "listen", "--spool", str(spool_dir)]
        cmd += ["--segment-age", str(args.segment_age), "--log-level", "WARNING"]
        for w in ids:
            cmd += ["--web-id", w]
        listener = subprocess.Popen(cmd, env=env, cwd=ROOT)
        reader = SpoolReader(spool_dir)
        try:
            if args.mode == "dagster":
                daemon = start_dagster(work, env)
                sampler = CpuSampler(daemon.pid).start()
            began = datetime.now(UTC)
            measure_from = began + timedelta(seconds=args.warmup)
            measure_to = measure_from + timedelta(seconds=args.seconds)
            cpu_at_start: float | None = None
            listener_cpu_start = 0.0
            while datetime.now(UTC) < measure_to:
                if args.mode == "direct":
                    names = [s.name for s in reader.ready()]
                    if names:
                        land_segments(Lake(str(lake_dir)), reader, names)
                    time.sleep(args.batch_s)
                else:
                    time.sleep(1.0)
                if cpu_at_start is None and datetime.now(UTC) >= measure_from:
                    cpu_at_start = sampler.total() if sampler else 0.0
                    listener_cpu_start = proc_cpu(listener.pid)
            cpu_window = (sampler.total() if sampler else 0.0) - (cpu_at_start or 0.0)
            listener_cpu = proc_cpu(listener.pid) - listener_cpu_start
            listener.send_signal(signal.SIGTERM)
            listener.wait(60)
            # Everything sealed must land (bounded): the values of the window are in the lake before measuring.
            if args.mode == "direct":
                names = [s.name for s in reader.ready()]
                if names:
                    land_segments(Lake(str(lake_dir)), reader, names)
            else:
                wait_for(lambda: not reader.ready(), 180, "the sensor to land every sealed segment")
                # A run may still be finishing (its segments already moved): stopping the daemon would kill it.
                wait_for(lambda: not unfinished(work / "dagster_home"), 120, "the last landing run to finish")
            state = reader.listener_state()
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(10)
            if daemon is not None:
                stop_group(daemon)
            if sampler is not None:
                sampler.stop()

    values = per_value_latency(lake_dir, measure_from, measure_to)
    window = (measure_to - measure_from).total_seconds()
    lat = values["lat_s"].drop_nulls()
    print(f"mode                        {args.mode}; scratch dir {work}")
    print(
        f"tags subscribed             {len(ids):,} in {state.get('channels')} channels (URL limit 8,000 bytes)"
    )
    print(f"measured window             {window:.0f} s after a {args.warmup:.0f} s warm-up")
    print(f"values landed (window)      {values.height:,} → {values.height / window:,.0f} values/s")
    print(
        f"latency PI ts → committed   p50 {lat.quantile(0.5):.2f} s, p95 {lat.quantile(0.95):.2f} s, "
        f"max {lat.max():.2f} s over all {lat.len():,} values"
    )
    print(f"listener CPU                {listener_cpu / window * 100:.1f} % of one core")
    if args.mode == "dagster":
        records = [r for r in run_records(work / "dagster_home")]  # type: ignore[attr-defined]
        in_window = [
            r
            for r in records
            if r.start_time and measure_from.timestamp() <= r.start_time <= measure_to.timestamp()  # type: ignore[attr-defined]
        ]
        launch = pl.Series([r.start_time - r.create_timestamp.timestamp() for r in in_window])  # type: ignore[attr-defined]
        wall = pl.Series([r.end_time - r.start_time for r in in_window if r.end_time])  # type: ignore[attr-defined]
        statuses = pl.Series([r.dagster_run.status.value for r in records]).value_counts()  # type: ignore[attr-defined]
        print(f"landing runs                {len(records)} in total, {len(in_window)} started in the window")
        print(f"runs per hour               {len(in_window) / window * 3600:,.0f}")
        print(f"run status                  {dict(statuses.iter_rows())}")
        print(f"run launch (created→start)  median {launch.median():.1f} s, max {launch.max():.1f} s")
        print(f"run wall (start→end)        median {wall.median():.1f} s, max {wall.max():.1f} s")
        assert sampler is not None
        by_kind: dict[str, float] = {}
        for key, cpu in sampler.cpu.items():
            cmd = sampler.commands.get(key, "")
            kind = next((k for k in PROCESS_KINDS if k in cmd), cmd[:60])
            by_kind[kind] = by_kind.get(kind, 0.0) + cpu
        runs_cpu = by_kind.get("multiprocessing.spawn", 0.0)  # the code server starts each run this way
        print(
            f"Dagster CPU (window)        {cpu_window:.0f} s = {cpu_window / window * 100:.0f} % of one core "
            f"(daemon + code server + runs)"
        )
        print(
            f"CPU per run (all runs)      {runs_cpu / max(1, len(records)):.1f} s "
            f"({len(records)} runs, {runs_cpu:.0f} s in run processes)"
        )
        print(f"Dagster CPU by process (s)  { ({k: round(v, 1) for k, v in by_kind.items()}) }")
    print(
        f"listener                    messages {state.get('messages')}, reconnects {state.get('reconnects')}, "
        f"heartbeats {state.get('heartbeats')}, gap values {state.get('gap_values')}"
    )


if __name__ == "__main__":
    main()
