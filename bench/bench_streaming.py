"""Benchmark of streaming end to end: 10,000 subscribed tags → listener → spool → Delta, the chosen design beside
today's, with the goals of issue 18 (latency p50 ≤ 2 s / p95 ≤ 5 s, Dagster ≤ 10 % of a core, ≤ 60 landing runs/h).

Modes (`--modes`, default `runs,lander,lander@10x`):
* `runs` — today's run per micro-batch: a real `dagster-daemon` with `pi_stream_landing_sensor`, one run at a time;
* `lander` — the chosen design: the listener and the lander (`python -m osipi_dagster.lib.streaming land`) commit
  micro-batches; a real `dagster-daemon` with `pi_stream_report_sensor` reports each commit as a materialization;
* `lander@10x` — the same at ten times the value rate (`mock_pi --value-rate 10`: ten times the values per second,
  real-time clock);
* `direct` — land_segments() in this process every `--batch-s` (the landing's own cost, no Dagster).
Latency is per value, over ALL values landed in the measured window: the Delta commit time of the value's batch
(Delta log, matched by the batch's `ingested_at`) minus the real time at which PI's clock reached its timestamp.
CPU is sampled from /proc: Dagster = the daemon's session (daemon, code server, the runs it launches) plus the
webserver's (webserver and its code server), as deployed. Small files: the stream table's live files and bytes at the
start and end of the window, and the files its commits wrote (landings) or removed (the lander's compaction).
The 1-minute load average (/proc/loadavg) is recorded before and after each mode: other work on the machine shows.
Run: .venv/bin/python bench/bench_streaming.py [--tags 10000] [--seconds 240] [--warmup 60] [--modes runs,lander]
     [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from typing import Any

import deltalake
import polars as pl
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.streaming_table import render  # noqa: E402
from mock_pi.process import start_emulator  # noqa: E402
from osipi_dagster.devtools.code_server import start_code_server as start_image_code_server  # noqa: E402
from osipi_dagster.lib.lake import Lake  # noqa: E402
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient  # noqa: E402
from osipi_dagster.lib.streaming import SpoolReader, land_segments  # noqa: E402
from osipi_dagster.lib.streaming.landing import INGESTED_AT_KEY  # noqa: E402
from osipi_dagster.lib.streaming.reports import landing_commits, open_table  # noqa: E402

BIN = Path(sys.executable).parent
JOB = "pi_stream_landing_job"
SENSORS = {"runs": "pi_stream_landing_sensor", "lander": "pi_stream_report_sensor"}
STREAM_KEY = ("pi", "pi_timeseries_stream")
TICK = os.sysconf("SC_CLK_TCK")
# How the daemon's processes are told apart in their command lines.
PROCESS_KINDS = (
    "dagster-daemon run",
    "dagster-webserver",
    "code-server start",
    "api grpc",
    "multiprocessing.spawn",
    "tail -F",
)
# Delta commit metrics naming the files a commit wrote and removed (merge, write, optimize).
FILES_ADDED = ("num_target_files_added", "num_added_files", "numFilesAdded")
FILES_REMOVED = ("num_target_files_removed", "num_removed_files", "numFilesRemoved")


def load_average() -> float:
    """The 1-minute load average (what `uptime` prints first)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def table_files(table_dir: Path) -> tuple[int, int]:
    """(live files, their bytes) of a Delta table, from its log; (0, 0) before it exists."""
    if not deltalake.DeltaTable.is_deltatable(str(table_dir)):
        return 0, 0
    add = pa.table(deltalake.DeltaTable(str(table_dir)).get_add_actions(flatten=True))
    return add.num_rows, sum(add.column("size_bytes").to_pylist())


def file_churn(table_dir: Path, since: datetime, until: datetime) -> dict[str, int]:
    """Files written and removed, and compactions, by the commits in [since, until]."""
    out = {"written": 0, "removed": 0, "compactions": 0}
    lo, hi = since.timestamp() * 1000, until.timestamp() * 1000
    for h in deltalake.DeltaTable(str(table_dir)).history():
        if not lo <= int(h["timestamp"]) <= hi:
            continue
        m = h.get("operationMetrics") or {}
        out["written"] += sum(int(m.get(k) or 0) for k in FILES_ADDED)
        out["removed"] += sum(int(m.get(k) or 0) for k in FILES_REMOVED)
        out["compactions"] += h.get("operation") == "OPTIMIZE"
    return out


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


def per_value_latency(lake: Path, clock: PIClock, since: datetime, until: datetime) -> pl.DataFrame:
    """Streamed rows whose PI timestamp falls in the real-time window [since, until], with their commit time (from
    the Delta log) minus the real time at which PI's clock reached the timestamp."""
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
    real_us = clock.real_us(pl.col("timestamp").dt.epoch("us"))
    return (
        rows.filter(
            (pl.col("source") == "stream")
            & pl.col("timestamp").is_between(clock.pi_time(since), clock.pi_time(until))
        )
        .join(commits, on="ingested_at", how="left")
        .with_columns(((pl.col("committed_ms") * 1000 - real_us) / 1e6).alias("lat_s"))
    )


class PIClock:
    """The emulator's clock against real time: pi = anchor + (real − anchor) · rate (rate 1: PI time is real time)."""

    def __init__(self, api: str, rate: float) -> None:
        self.rate = rate
        with PIWebAPIClient(ClientConfig(base_url=api)) as pi:
            before = time.time()
            server = pi.server_time().timestamp()
            local = (before + time.time()) / 2
        self.anchor_s = local if rate == 1 else (server - rate * local) / (1 - rate)

    def pi_time(self, real: datetime) -> datetime:
        return datetime.fromtimestamp(self.anchor_s + (real.timestamp() - self.anchor_s) * self.rate, UTC)

    def real_us(self, pi_us: pl.Expr) -> pl.Expr:
        anchor_us = self.anchor_s * 1e6
        return anchor_us + (pi_us - anchor_us) / self.rate


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_code_server(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """The definitions served by one long-lived `dagster code-server start` on loopback, as deployed (the image's
    command in deploy/Dockerfile, the Helm chart's user deployment), and a workspace file pointing at it
    (deploy/workspace.code-server.yaml with the server's port).

    The daemon and the UI connect to this server. With the repository's `workspace.yaml` (`python_module`, what
    `dagster dev` uses) each would spawn its own, and the daemon replaces its code server every 60 s
    (`RELOAD_WORKSPACE_INTERVAL` in dagster/_daemon/controller.py), importing the definitions again each time."""
    deploy = ROOT / "deploy"
    log = open(work / "code_server.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    try:
        server = start_image_code_server(
            deploy / "Dockerfile", deploy / "workspace.code-server.yaml", work, env, ROOT, log=log
        )
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: see {work / 'code_server.log'}") from None
    return server.proc, server.workspace


def start_webserver(work: Path, env: dict[str, str], workspace: Path) -> subprocess.Popen[bytes]:
    """The Dagster UI on loopback, as deployed next to the daemon (its CPU counts as Dagster's)."""
    log = open(work / "webserver.log", "wb")  # noqa: SIM115 - kept open for the webserver's lifetime
    return subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-w",
            str(workspace),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_dagster(
    work: Path, env: dict[str, str], sensor: str, workspace_file: Path
) -> subprocess.Popen[bytes]:
    """The daemon over the code server's workspace, with `sensor` turned on first."""
    workspace = ["-w", str(workspace_file)]
    # The sensor ships STOPPED; this is the same command an operator runs once per deployment.
    subprocess.run(
        [str(BIN / "dagster"), "sensor", "start", sensor, *workspace], cwd=ROOT, env=env, check=True
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


def run_records(home: Path, job: str | None = JOB) -> list[Any]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_run_records(dg.RunsFilter(job_name=job) if job else None))


def unfinished(home: Path) -> bool:
    import dagster as dg

    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    return any(r.dagster_run.status not in done for r in run_records(home))


def reported(home: Path) -> list[Any]:
    """Runless materializations of the stream asset (the report sensor's), oldest first."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(dg.AssetKey(list(STREAM_KEY)), limit=10_000).records
        return sorted((r for r in records if not r.run_id), key=lambda r: r.timestamp)


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One mode end to end; returns its figures (and prints them)."""
    kind, _, rate_text = mode.partition("@")
    rate = int(rate_text.rstrip("x")) if rate_text else 1
    work = Path(tempfile.mkdtemp(prefix=f"bench_streaming_{kind}_"))
    spool_dir, lake_dir, home = work / "spool", work / "lake", work / "dagster_home"
    stream_table = lake_dir / "pi_timeseries"
    emu_args = ("--tags", str(args.tags), "--channel-poll-ms", "1000", "--value-rate", str(rate))
    load_before = load_average()
    print(f"== {mode}: load average before {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    daemon: subprocess.Popen[bytes] | None = None
    webserver: subprocess.Popen[bytes] | None = None
    web_sampler: CpuSampler | None = None
    code_server: subprocess.Popen[bytes] | None = None
    code_sampler: CpuSampler | None = None
    lander: subprocess.Popen[bytes] | None = None
    sampler: CpuSampler | None = None
    with start_emulator(*emu_args, timeout=300) as emu:
        with PIWebAPIClient(ClientConfig(base_url=emu.api)) as pi:
            ids = [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]
        clock = PIClock(emu.api, 1.0)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PI_WEB_API_URL": emu.api,
            "OSIPI_LAKE_URI": str(lake_dir),
            "OSIPI_STREAM_SPOOL": str(spool_dir),
            "DAGSTER_HOME": str(home),
            "OSIPI_STREAM_MIN_RUN_INTERVAL_S": str(args.min_run_interval),
        }
        module = [str(BIN / "python"), "-m", "osipi_dagster.lib.streaming"]
        common = ["--spool", str(spool_dir), "--log-level", "WARNING", "--health-address", "127.0.0.1:0"]
        cmd = [*module, "listen", *common, "--segment-age", str(args.segment_age)]
        for w in ids:
            cmd += ["--web-id", w]
        listener = subprocess.Popen(cmd, env=env, cwd=ROOT)
        reader = SpoolReader(spool_dir)
        try:
            if kind == "lander":
                compact = (
                    ["--compact-interval", str(args.compact_interval)] if args.compact_interval >= 0 else []
                )
                lander = subprocess.Popen([*module, "land", *common, *compact], env=env, cwd=ROOT)
            if kind in SENSORS:
                home.mkdir(parents=True)
                shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
                if args.managed_code_server:
                    workspace = ROOT / "workspace.yaml"
                else:
                    code_server, workspace = start_code_server(work, env)
                    code_sampler = CpuSampler(code_server.pid).start()
                daemon = start_dagster(work, env, SENSORS[kind], workspace)
                sampler = CpuSampler(daemon.pid).start()
                webserver = start_webserver(work, env, workspace)
                web_sampler = CpuSampler(webserver.pid).start()

            def other_run_cpu() -> float:
                """CPU of runs launched meanwhile (run workers: children of the daemon, or of the code server it
                asks to launch them). With the lander no run lands anything: they are other sensors' and schedules'
                (freshness checks, the hourly partition), not streaming's, and are left out of Dagster's share."""
                if kind != "lander":
                    return 0.0
                is_run = lambda c: "multiprocessing.spawn" in c  # noqa: E731
                return sum(smp.total(is_run) for smp in (sampler, code_sampler) if smp is not None)

            began = datetime.now(UTC)
            measure_from = began + timedelta(seconds=args.warmup)
            measure_to = measure_from + timedelta(seconds=args.seconds)
            cpu_at_start: float | None = None
            web_cpu_at_start = code_cpu_at_start = 0.0
            files_at_start = (0, 0)
            live_max = 0
            next_look = 0.0
            other_runs_at_start = 0.0
            listener_cpu0 = lander_cpu0 = 0.0
            while datetime.now(UTC) < measure_to:
                if kind == "direct":
                    names = [s.name for s in reader.ready()]
                    if names:
                        land_segments(Lake(str(lake_dir)), reader, names)
                    time.sleep(args.batch_s)
                else:
                    time.sleep(1.0)
                if cpu_at_start is None and datetime.now(UTC) >= measure_from:
                    cpu_at_start = sampler.total() if sampler else 0.0
                    web_cpu_at_start = web_sampler.total() if web_sampler else 0.0
                    code_cpu_at_start = code_sampler.total() if code_sampler else 0.0
                    files_at_start = table_files(stream_table)
                    other_runs_at_start = other_run_cpu()
                    listener_cpu0 = proc_cpu(listener.pid)
                    lander_cpu0 = proc_cpu(lander.pid) if lander else 0.0
                if cpu_at_start is not None and time.monotonic() >= next_look:
                    next_look = time.monotonic() + 10  # the table's live files every 10 s: their peak
                    live_max = max(live_max, table_files(stream_table)[0])
            files_at_end = table_files(stream_table)
            live_max = max(live_max, files_at_end[0])
            cpu_window = (sampler.total() if sampler else 0.0) - (cpu_at_start or 0.0)
            web_cpu = (web_sampler.total() if web_sampler else 0.0) - web_cpu_at_start
            code_cpu = (code_sampler.total() if code_sampler else 0.0) - code_cpu_at_start
            cpu_window += web_cpu + code_cpu
            # With the lander no run lands anything: runs launched meanwhile are other sensors' (freshness checks).
            other_runs = other_run_cpu() - other_runs_at_start
            listener_cpu = proc_cpu(listener.pid) - listener_cpu0
            lander_cpu = (proc_cpu(lander.pid) - lander_cpu0) if lander else 0.0
            listener.send_signal(signal.SIGTERM)
            listener.wait(60)
            # Everything sealed must land (bounded): the values of the window are in the lake before measuring.
            if kind == "direct":
                names = [s.name for s in reader.ready()]
                if names:
                    land_segments(Lake(str(lake_dir)), reader, names)
            else:
                wait_for(lambda: not reader.ready(), 300, "every sealed segment to land")
            if kind == "runs":
                # A run may still be finishing (its segments already moved): stopping the daemon would kill it.
                wait_for(lambda: not unfinished(home), 120, "the last landing run to finish")
            if kind == "lander":
                ref = Lake(str(lake_dir)).table("pi_timeseries")
                last = max(c.version for c in landing_commits(open_table(ref), -1, 100_000)[0])

                def all_reported() -> bool:
                    return any(
                        r.asset_materialization.metadata["delta_version"].value >= last
                        for r in reported(home)
                    )

                wait_for(all_reported, 120, "the report sensor to report the last landing")
            state = reader.listener_state()
        finally:
            for proc in (listener, lander):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
            for group in (daemon, webserver, code_server):
                if group is not None:
                    stop_group(group)
            for smp in (sampler, web_sampler, code_sampler):
                if smp is not None:
                    smp.stop()

    values = per_value_latency(lake_dir, clock, measure_from, measure_to)
    window = (measure_to - measure_from).total_seconds()
    lat = values["lat_s"].drop_nulls()
    churn = file_churn(stream_table, measure_from, measure_to)
    per_h = 3600 / window
    out: dict[str, Any] = {
        "mode": mode,
        "code_server": "managed (workspace.yaml)"
        if args.managed_code_server
        else "dagster code-server start",
        "tags": len(ids),
        "values_per_s": values.height / window,
        "p50": lat.quantile(0.5),
        "p95": lat.quantile(0.95),
        "max": lat.max(),
        "listener_cpu": listener_cpu / window * 100,
        "lander_cpu": lander_cpu / window * 100 if lander else None,
        "dagster_cpu": (cpu_window - other_runs) / window * 100 if sampler else None,
        "files_written_per_h": churn["written"] * per_h,
        "files_net_per_h": (files_at_end[0] - files_at_start[0]) * per_h,
        "mib_per_h": (files_at_end[1] - files_at_start[1]) * per_h / 2**20,
        "live_files_max": live_max,
        "live_files_end": files_at_end[0],
        "live_mib_end": files_at_end[1] / 2**20,
        "compactions": churn["compactions"],
        "load_before": load_before,
        "load_after": load_average(),
    }
    print(f"== {mode}: scratch dir {work}; code server: {out['code_server']}")
    print(f"tags subscribed             {len(ids):,} in {state.get('channels')} channels; value rate ×{rate}")
    print(f"measured window             {window:.0f} s after a {args.warmup:.0f} s warm-up")
    print(f"values landed (window)      {values.height:,} → {values.height / window:,.0f} values/s")
    print(
        f"latency PI ts → committed   p50 {out['p50']:.2f} s, p95 {out['p95']:.2f} s, "
        f"max {out['max']:.2f} s over all {lat.len():,} values"
    )
    print(
        f"stream table files          {files_at_start[0]:,} → {files_at_end[0]:,} live in the window "
        f"({out['files_net_per_h']:+,.0f}/h, at most {live_max:,}); {churn['written']:,} written "
        f"({out['files_written_per_h']:,.0f}/h), {churn['removed']:,} removed, {churn['compactions']} compactions; "
        f"{out['live_mib_end']:,.1f} MiB live at the end (+{out['mib_per_h']:,.1f} MiB/h)"
    )
    print(f"listener CPU                {out['listener_cpu']:.1f} % of one core")
    if lander:
        print(f"lander CPU                  {out['lander_cpu']:.1f} % of one core")
    if sampler is not None:
        landing_runs = run_records(home)
        all_runs = run_records(home, None)
        in_window = [
            r
            for r in landing_runs
            if r.start_time and measure_from.timestamp() <= r.start_time <= measure_to.timestamp()
        ]
        out["landing_runs_per_h"] = len(in_window) / window * 3600
        by_kind: dict[str, float] = {}
        extra = [smp for smp in (web_sampler, code_sampler) if smp is not None]
        samples = {**sampler.cpu, **{k: v for smp in extra for k, v in smp.cpu.items()}}
        commands = {**sampler.commands, **{k: v for smp in extra for k, v in smp.commands.items()}}
        for key, cpu in samples.items():
            command = commands.get(key, "")
            name = next((k for k in PROCESS_KINDS if k in command), command[:60])
            by_kind[name] = by_kind.get(name, 0.0) + cpu
        print(f"landing runs                {len(landing_runs)} in total ({len(all_runs)} runs of any job)")
        print(f"landing runs per hour       {out['landing_runs_per_h']:,.0f}")
        if in_window:
            launch = pl.Series([r.start_time - r.create_timestamp.timestamp() for r in in_window])
            wall = pl.Series([r.end_time - r.start_time for r in in_window if r.end_time])
            print(f"run launch (created→start)  median {launch.median():.1f} s, max {launch.max():.1f} s")
            print(f"run wall (start→end)        median {wall.median():.1f} s, max {wall.max():.1f} s")
        if kind == "lander":
            # Counted by landing time (the report's committed_at), not by when the sensor wrote them (every 30 s).
            mats = [
                r
                for r in reported(home)
                if measure_from.timestamp()
                <= r.asset_materialization.metadata["committed_at"].value
                <= measure_to.timestamp()
            ]
            out["reported_per_h"] = len(mats) / window * 3600
            print(
                f"landings reported (window)  {len(mats)} materializations → {out['reported_per_h']:,.0f} per hour, no run"
            )
        runs_note = f"; other jobs' runs ({other_runs:.0f} s) excluded" if other_runs else ""
        print(
            f"Dagster CPU (window)        {cpu_window - other_runs:.0f} s = {out['dagster_cpu']:.1f} % of one core "
            f"(daemon + webserver + code server + landing runs{runs_note}; webserver {web_cpu:.0f} s, "
            f"code server {code_cpu:.0f} s)"
        )
        print(f"Dagster CPU by process (s)  { ({k: round(v, 1) for k, v in by_kind.items()}) }")
    print(
        f"listener                    messages {state.get('messages')}, reconnects {state.get('reconnects')}, "
        f"heartbeats {state.get('heartbeats')}, gap values {state.get('gap_values')}"
    )
    print(
        f"load average                {out['load_before']:.2f} before, {out['load_after']:.2f} after "
        f"(now {Path('/proc/loadavg').read_text().split()[:3]})",
        flush=True,
    )
    return out


def table(results: list[dict[str, Any]]) -> None:
    """The goals' figures side by side (last in the output: run_all.py prints it)."""
    print("\n".join(render(results)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tags", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=240.0, help="measured window, after the warm-up")
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--modes", default="runs,lander,lander@10x", help="runs, lander, lander@<rate>x, direct")
    p.add_argument("--mode", help="one mode (kept for older command lines; 'dagster' = runs)")
    p.add_argument(
        "--compact-interval",
        type=float,
        default=-1.0,
        help="lander --compact-interval (default: the lander's)",
    )
    p.add_argument("--json", default="", help="also write the figures of every mode to this JSON file")
    p.add_argument(
        "--managed-code-server",
        action="store_true",
        help="the repository's workspace.yaml (the daemon and the UI spawn their own code servers, as `dagster dev`) "
        "instead of one long-lived `dagster code-server start`, as deployed",
    )
    p.add_argument("--batch-s", type=float, default=2.0, help="direct mode: land every this many seconds")
    p.add_argument("--segment-age", type=float, default=0.5)
    p.add_argument(
        "--min-run-interval", type=float, default=0.0, help="OSIPI_STREAM_MIN_RUN_INTERVAL_S (runs)"
    )
    args = p.parse_args()
    modes = [{"dagster": "runs"}.get(args.mode, args.mode)] if args.mode else args.modes.split(",")
    results = [run_mode(mode.strip(), args) for mode in modes]
    table(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"tags": args.tags, "seconds": args.seconds, "modes": results}))


if __name__ == "__main__":
    main()
