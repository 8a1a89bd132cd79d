"""Scale-out benchmark (issue 15): an hourly backfill of H hours × S tag shards through the real Dagster daemon on
Postgres (deploy/dagster.production.yaml), over one emulator and over two (two connections).

Per configuration: a fresh Dagster database on one loopback Postgres, a fresh lake (the catalogue copied in), a
`dagster-daemon` started with the configuration's environment, an asset backfill submitted as the UI does, bounded
polls until every run has finished, then every process stopped by PID. Reported: wall time (first run created →
last run ended; the backfill daemon's pick-up after submission apart), values landed (read back from Delta),
values/s, runs, most runs at once, per-run overhead (run wall from RUN_STARTING minus the asset's own fetch + write
time), Delta commits and lost commit races (the materializations' `write_attempts`), and CPU seconds of the daemon
(with its code server), the run workers, the emulators and Postgres, sampled from /proc.

    .venv/bin/python bench/bench_scaleout.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
FROZEN = "2024-05-01T12:00:00Z"
HOURS = ["2024-05-01-09:00", "2024-05-01-10:00", "2024-05-01-11:00"]
SITE_B = "site_b"
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
RUN_TIMEOUT_S = 900.0
# (emulators, shards) per configuration; tags per emulator and hours per size.
FULL = {"tags": 3000, "hours": 2, "configs": [(1, 1), (1, 2), (1, 4), (1, 8), (2, 1), (2, 4)]}
QUICK = {"tags": 200, "hours": 1, "configs": [(1, 1), (1, 2), (2, 2)]}


@dataclass
class Connection:
    """One connection of a configuration: its asset, run tags and table under the lake."""

    asset: str
    tags: dict[str, str]
    table: str


CONNECTIONS = [
    Connection(
        "pi/pi_timeseries", {"osipi/connection": "default", "osipi/pool": "pi_web_api"}, "pi_timeseries"
    ),
    Connection(
        f"{SITE_B}/pi_timeseries",
        {"osipi/connection": SITE_B, "osipi/pool": f"pi_web_api_{SITE_B}"},
        f"{SITE_B}/pi_timeseries",
    ),
]


def partition_keys(hours: int, shards: int) -> list[str]:
    """The backfill's partition keys: "<hour>|<shard>" when sharded, else the hours."""
    return [f"{h}|{s}" for h in HOURS[:hours] for s in range(shards)] if shards > 1 else HOURS[:hours]


# --- CPU from /proc -------------------------------------------------------------------------------------------


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid → (ppid, utime + stime in ticks, command line) for every live process."""
    out: dict[int, tuple[int, int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        out[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmd)
    return out


def tree(table: dict[int, tuple[int, int, str]], root: int) -> set[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class CpuSampler:
    """Samples the CPU time of process trees every `interval` s: per pid the last value seen, minus its value when
    sampling began. A run worker's last fraction of a second before it exits is not seen (an underestimate)."""

    def __init__(self, roots: dict[str, list[int]], interval: float = 0.25) -> None:
        self.roots, self.interval = roots, interval
        self.base: dict[int, int] = {}
        self.last: dict[int, tuple[str, int]] = {}
        self.workers: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.machine0 = machine_ticks()
        self.machine1 = self.machine0

    def _classify(self, table: dict[int, tuple[int, int, str]]) -> dict[int, str]:
        kinds: dict[int, str] = {}
        for kind, roots in self.roots.items():
            for root in roots:
                for pid in tree(table, root):
                    cmd = table[pid][2]
                    if kind == "daemon" and pid != root:
                        # The code server (`dagster api grpc`) and what it spawns: run workers and their steps.
                        kinds[pid] = "code_server" if "api grpc" in cmd else "runs"
                    else:
                        kinds[pid] = kind
        return kinds

    def _sample(self) -> None:
        table = proc_table()
        for pid, kind in self._classify(table).items():
            self.last[pid] = (kind, table[pid][1])
            if kind == "runs" and "spawn_main" in table[pid][2]:
                self.workers.add(pid)  # a run worker or a step worker (multiprocess executor)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        table = proc_table()
        self.base = {pid: table[pid][1] for pid in self._classify(table)}
        self.machine0 = machine_ticks()
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds per kind since start, and the machine's busy fraction of all cores."""
        self._sample()
        self.machine1 = machine_ticks()
        self._stop.set()
        self._thread.join(timeout=10)
        out: dict[str, float] = {}
        for pid, (kind, ticks) in self.last.items():
            out[kind] = out.get(kind, 0.0) + (ticks - self.base.get(pid, 0)) / TICK
        busy = self.machine1[0] - self.machine0[0]
        total = self.machine1[1] - self.machine0[1]
        out["machine_busy"] = busy / total if total else float("nan")
        out["python_workers"] = len(self.workers)
        return {k: round(v, 3) for k, v in out.items()}


# --- processes ------------------------------------------------------------------------------------------------


def started(cmd: list[str], env: dict[str, str], log: Path) -> Any:
    """The production demo's `started`: a process in its own session, output to `log`, its tree stopped by PID."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from demo_production import started as demo_started

    return demo_started(cmd, env, log)


def fresh_database(server: Any) -> None:
    """Drop and recreate the server's Dagster database (one per configuration)."""
    import psycopg2

    conn = psycopg2.connect(server.url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {server.database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {server.database}")
    conn.close()


def instance_yaml(home: Path, limit: int) -> None:
    """deploy/dagster.production.yaml with the run and pool limits raised to `limit` (so 8 shards can run at once);
    everything else (Postgres storage, queued coordinator, run retries, monitoring) as in production."""
    import yaml

    config = yaml.safe_load((ROOT / "deploy" / "dagster.production.yaml").read_text())
    runs = config["concurrency"]["runs"]
    runs["max_concurrent_runs"] = limit
    for rule in runs["tag_concurrency_limits"]:
        rule["limit"] = limit
    config["concurrency"]["pools"]["default_limit"] = limit
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def connections_dir(scratch: Path, shards: int) -> Path:
    """A folder with the second connection (site_b, the demo's YAML with `tag_shards`)."""
    folder = scratch / f"connections_{shards}" / SITE_B
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "scripts" / "demo_connections" / SITE_B / "defs.yaml").read_text()
    (folder / "defs.yaml").write_text(text.rstrip() + f"\n  tag_shards: {shards}\n")
    return folder.parent


def run_catalogue(env: dict[str, str], emulators: int, home: Path, log: Path) -> None:
    """Land the catalogue (pi_points etc.) of each connection in the base lake, in-process on a SQLite home."""
    home.mkdir(parents=True, exist_ok=True)
    jobs = ["pi_catalogue_job", f"{SITE_B}__pi_catalogue_job"][:emulators]
    for job in jobs:
        with log.open("ab") as out:
            done = subprocess.run(
                [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-m",
                    "osipi_dagster.definitions",
                    "-a",
                    "defs",
                    "-j",
                    job,
                ],
                cwd=ROOT,
                env={**env, "DAGSTER_HOME": str(home)},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{job} failed (exit {done.returncode}); see {log}")


def submit(env: dict[str, str], backfills: list[tuple[str, list[str], dict[str, str]]]) -> list[str]:
    """Submit one asset backfill per (asset, keys, tags) from one process (definitions loaded with `env`)."""
    code = (
        "import json,sys\nfrom osipi_dagster.devtools.backfill import submit\n"
        "print(json.dumps([submit(a, k, t) for a, k, t in json.loads(sys.argv[1])]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(backfills)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"backfill submission failed:\n{done.stderr[-3000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# --- reading the instance -------------------------------------------------------------------------------------


def daemon_ready(instance: Any, since: float) -> bool:
    """The backfill and run-queue daemons have sent a heartbeat since `since`."""
    beats = instance.get_daemon_heartbeats()
    need = {"BACKFILL", "QUEUED_RUN_COORDINATOR"}
    return need <= {k for k, b in beats.items() if b.timestamp >= since}


def poll(condition: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    """Bounded poll: `condition()`'s first truthy value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"{what} not done after {timeout:.0f} s")


def covered(run: Any, keys: list[str]) -> set[str]:
    """The partition keys a run lands: its partition, or its range (one run of several hours when unsharded)."""
    if "dagster/partition" in run.tags:
        return {run.tags["dagster/partition"]}
    first = run.tags.get("dagster/asset_partition_range_start")
    last = run.tags.get("dagster/asset_partition_range_end")
    return {k for k in keys if first is not None and last is not None and first <= k <= last}


def finished(instance: Any, backfill_ids: list[str], keys: list[str]) -> list[Any] | None:
    """The backfills' run records once each backfill's partitions all have a successful run and no run is
    unfinished (the backfill daemon's own bookkeeping, every 30 s, is not waited for), or once every backfill is
    terminal; None before."""
    import dagster as dg
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    records, landed = [], True
    for bid in backfill_ids:
        mine = list(instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": bid})))
        runs = [r.dagster_run for r in mine]
        done = set().union(*(covered(r, keys) for r in runs if r.status == dg.DagsterRunStatus.SUCCESS))
        landed = landed and done >= set(keys)
        records += mine
    if not records or not all(r.dagster_run.is_finished for r in records):
        return None
    terminal = all(
        (b := instance.get_backfill(bid)) is not None and b.status in BULK_ACTION_TERMINAL_STATUSES
        for bid in backfill_ids
    )
    return records if landed or terminal else None


def run_facts(instance: Any, record: Any) -> dict[str, Any]:
    """One run: launch (RUN_STARTING), start, end, status, and its materialization's figures."""
    from dagster._core.events import DagsterEventType as T

    run = record.dagster_run
    facts: dict[str, Any] = {
        "status": run.status.value,
        "created": record.create_timestamp.timestamp(),
        "start": record.start_time,
        "end": record.end_time,
        "partition": run.tags.get("dagster/partition", ""),
    }
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == T.RUN_STARTING:
            facts["launched"] = entry.timestamp
        elif event.event_type == T.ASSET_MATERIALIZATION:
            meta = event.event_specific_data.materialization.metadata
            for key in ("values", "duration_s", "write_duration_s", "write_attempts"):
                if key in meta:
                    facts[key] = meta[key].value
    return facts


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end at the same instant as a start closes first)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def summarise(runs: list[dict[str, Any]], submitted: float, rows: int, versions: int) -> dict[str, Any]:
    """A configuration's figures from its runs' facts, the rows read back and the Delta commits."""
    ok = [r for r in runs if r["status"] == "SUCCESS"]
    first = min(r["created"] for r in runs)
    last = max(r["end"] for r in runs if r.get("end"))
    wall = last - first
    spans = [(r.get("launched", r["start"]), r["end"]) for r in runs if r.get("end") and r.get("start")]
    overheads = [
        r["end"] - r.get("launched", r["start"]) - r["duration_s"] - r["write_duration_s"]
        for r in ok
        if r.get("end") and "duration_s" in r and "write_duration_s" in r
    ]
    attempts = [int(r["write_attempts"]) for r in ok if "write_attempts" in r]
    asset_s = [
        r["duration_s"] + r["write_duration_s"] for r in ok if "duration_s" in r and "write_duration_s" in r
    ]
    return {
        "runs": len(runs),
        "failed": len(runs) - len(ok),
        "pickup_s": round(first - submitted, 2),
        "wall_s": round(wall, 2),
        "values": rows,
        "values_per_s": round(rows / wall, 1) if wall > 0 else float("nan"),
        "most_at_once": most_at_once(spans),
        "run_wall_s": round(sum(e - s for s, e in spans) / len(spans), 2) if spans else float("nan"),
        "asset_s": round(sum(asset_s) / len(asset_s), 2) if asset_s else float("nan"),
        "overhead_s": round(sum(overheads) / len(overheads), 2) if overheads else float("nan"),
        "commits": versions,
        "lost_races": sum(a - 1 for a in attempts),
        "conflict_rate": round(sum(a - 1 for a in attempts) / sum(attempts), 3) if attempts else 0.0,
    }


# --- one configuration ----------------------------------------------------------------------------------------


def configuration(
    server: Any,
    apis: list[str],
    base_lake: Path,
    scratch: Path,
    shards: int,
    hours: int,
    limit: int,
) -> dict[str, Any]:
    import dagster as dg
    from deltalake import DeltaTable

    emulators = len(apis)
    name = f"e{emulators}_s{shards}"
    work = scratch / name
    home, lake = work / "home", work / "lake"
    instance_yaml(home, limit)
    shutil.copytree(base_lake, lake)
    fresh_database(server)
    env = {
        **os.environ,
        **server.env(),
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(home),
        "OSIPI_LAKE_URI": str(lake),
        "OSIPI_TAG_SHARDS": str(shards),
        "PI_WEB_API_URL": apis[0],
    }
    if emulators > 1:
        env |= {"SITE_B_URL": apis[1], "OSIPI_CONNECTIONS_DIR": str(connections_dir(scratch, shards))}
    else:
        env.pop("OSIPI_CONNECTIONS_DIR", None)
    keys = partition_keys(hours, shards)
    os.environ["DAGSTER_HOME"] = str(home)
    for k, v in server.env().items():
        os.environ[k] = v
    with ExitStack() as stack:
        began = time.time()
        daemon = stack.enter_context(
            started(
                [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                env,
                work / "daemon.log",
            )
        )
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        poll(lambda: daemon_ready(instance, began), 300, "daemon start", 0.5)
        sampler = CpuSampler(
            {"daemon": [daemon.pid], "emulator": EMULATOR_PIDS[:emulators], "postgres": [server.process.pid]}
        )
        sampler.start()
        submitted = time.time()
        ids = submit(env, [(c.asset, keys, c.tags) for c in CONNECTIONS[:emulators]])
        try:
            records = poll(lambda: finished(instance, ids, keys), RUN_TIMEOUT_S, f"backfill {name}", 1.0)
        finally:
            cpu = sampler.stop()
        runs = [run_facts(instance, r) for r in records]
        # Runs the daemon launched besides the backfill's (sensors): their processes count in the runs' CPU.
        other_runs = instance.get_runs_count() - len(records)
    rows = versions = 0
    for conn in CONNECTIONS[:emulators]:
        table = DeltaTable(str(lake / conn.table))
        rows += table.to_pyarrow_dataset().count_rows()
        versions += table.version() + 1
    out = {
        "emulators": emulators,
        "shards": shards,
        "hours": hours,
        **summarise(runs, submitted, rows, versions),
    }
    out["cpu"] = cpu
    out["other_runs"] = other_runs
    out["cpu_per_run_s"] = round(cpu.get("runs", 0.0) / max(1, out["runs"] + other_runs), 2)
    out["processes_per_run"] = round(cpu.get("python_workers", 0) / max(1, out["runs"] + other_runs), 1)
    return out


EMULATOR_PIDS: list[int] = []


def bench(tags: int, hours: int, configs: list[tuple[int, int]], scratch: Path) -> list[dict[str, Any]]:
    from mock_pi.process import start_emulator
    from osipi_dagster.devtools.postgres import start_postgres

    limit = max(s for _, s in configs) * max(e for e, _ in configs)
    limit = max(limit, 8)
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        pg_dir = scratch / "pg"
        pg_dir.mkdir()
        scratch.chmod(0o755)
        pg_dir.chmod(0o755)
        server = stack.enter_context(start_postgres(pg_dir / "data"))
        emulator_count = max(e for e, _ in configs)
        apis = []
        for _ in range(emulator_count):
            emu = stack.enter_context(
                start_emulator(
                    "--seed",
                    "42",
                    "--tags",
                    str(tags),
                    "--clock",
                    f"frozen:{FROZEN}",
                    timeout=300,
                    log_dir=scratch,
                )
            )
            EMULATOR_PIDS.append(emu.process.pid)
            apis.append(emu.api)
        base = scratch / "base_lake"
        env = {**os.environ, "OSIPI_LAKE_URI": str(base), "PI_WEB_API_URL": apis[0], "PYTHONUNBUFFERED": "1"}
        if emulator_count > 1:
            env |= {"SITE_B_URL": apis[1], "OSIPI_CONNECTIONS_DIR": str(connections_dir(scratch, 1))}
        t0 = time.perf_counter()
        run_catalogue(env, emulator_count, scratch / "catalogue_home", scratch / "catalogue.log")
        print(f"  catalogue of {emulator_count} connection(s): {time.perf_counter() - t0:.0f} s", flush=True)
        for emulators, shards in configs:
            t0 = time.perf_counter()
            row = configuration(server, apis[:emulators], base, scratch, shards, hours, limit)
            row["load"] = list(os.getloadavg())
            results.append(row)
            print("  " + " | ".join(render([row])[-1:]) + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
    return results


# --- rendering ------------------------------------------------------------------------------------------------

COLUMNS = (
    "| PI servers | shards | runs | at once | wall s | values | values/s | × 1 shard | run wall s | asset s "
    "| overhead s/run | processes/run | CPU s/run | commits | lost races | CPU s daemon / code server / runs / PI / pg "
    "| machine busy |"
)


def render(rows: list[dict[str, Any]]) -> list[str]:
    """The figures as a Markdown table (speed-up against the 1-shard row of the same emulator count)."""
    base = {r["emulators"]: r["values_per_s"] for r in rows if r["shards"] == 1}
    lines = [COLUMNS, "|" + "---|" * (COLUMNS.count("|") - 1)]
    for r in rows:
        cpu = r.get("cpu", {})
        ref = base.get(r["emulators"])
        speed = f"{r['values_per_s'] / ref:.2f}" if ref else "–"
        failed = f" ({r['failed']} failed)" if r.get("failed") else ""
        failed += f" (+{r['other_runs']} sensor)" if r.get("other_runs") else ""
        lines.append(
            f"| {r['emulators']} | {r['shards']} | {r['runs']}{failed} "
            f"| {r['most_at_once']} | {r['wall_s']:.1f} | {r['values']:,} | {r['values_per_s']:,.0f} | {speed} "
            f"| {r['run_wall_s']:.1f} | {r['asset_s']:.2f} | {r['overhead_s']:.1f} | {r.get('processes_per_run', 0):.1f} "
            f"| {r.get('cpu_per_run_s', 0):.1f} "
            f"| {r['commits']} | {r['lost_races']} "
            f"| {cpu.get('daemon', 0):.0f} / {cpu.get('code_server', 0):.0f} / {cpu.get('runs', 0):.0f} / "
            f"{cpu.get('emulator', 0):.0f} / "
            f"{cpu.get('postgres', 0):.0f} | {cpu.get('machine_busy', float('nan')):.0%} |"
        )
    return lines


def verdict(rows: list[dict[str, Any]], cores: int = CORES) -> str:
    """Where throughput stops scaling on this machine, and why, from the one-emulator figures."""
    one = sorted((r for r in rows if r["emulators"] == 1), key=lambda r: r["shards"])
    if len(one) < 2:
        return "too few configurations to say where scaling stops"
    best = max(one, key=lambda r: r["values_per_s"])
    gains = [
        (a["shards"], b["shards"], b["values_per_s"] / a["values_per_s"])
        for a, b in itertools.pairwise(one)
        if a["values_per_s"]
    ]
    stop = next(((a, b, g) for a, b, g in gains if g < 1.1), None)
    busy = max(r.get("cpu", {}).get("machine_busy", 0.0) for r in one)
    per_run = [r.get("cpu_per_run_s", 0.0) for r in one]
    asset = [r["asset_s"] for r in one]
    where = (
        f"values/s stops scaling beyond {stop[0]} shard{'s' * (stop[0] > 1)} (going to {stop[1]} changes it by "
        f"{stop[2] - 1:+.0%})"
        if stop
        else f"values/s still rises up to {one[-1]['shards']} shards"
    )
    last = one[-1]
    procs = last.get("processes_per_run", 0.0)
    # With every core busy starting runs, runs/s ≤ cores / CPU per run, so values/s ≤ that × values per run.
    ceiling = (
        cores / last["cpu_per_run_s"] * last["values"] / last["runs"] if last.get("cpu_per_run_s") else 0.0
    )
    return (
        f"{where}; best {best['values_per_s']:,.0f} values/s at {best['shards']} shard{'s' * (best['shards'] > 1)} "
        f"({best['values_per_s'] / one[0]['values_per_s']:.2f}× 1 shard). Why: the machine was up to {busy:.0%} busy "
        f"({cores} cores); a run costs {min(per_run):.1f}–{max(per_run):.1f} CPU s ({procs:.0f} Python processes at "
        f"{last['shards']} shards: run worker, asset step, check steps, each starting Dagster and loading the code) "
        f"against {min(asset):.2f}–{max(asset):.2f} s of fetch + write, so {cores} cores start at most "
        f"{cores / max(per_run):.2f}–{cores / min(per_run):.2f} runs/s; at {last['shards']} shards "
        f"({last['values'] // max(1, last['runs']):,} values per run) that caps this machine near {ceiling:,.0f} "
        "values/s whatever the shard count. Each shard added splits the same values over more runs and adds "
        "one run's start-up per hour."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help=f"{QUICK['tags']} tags × {QUICK['hours']} h, 3 configurations"
    )
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    print(
        f"scale-out: {size['tags']} tags per PI server × {size['hours']} h; load {os.getloadavg()}",
        flush=True,
    )
    scratch = Path(tempfile.mkdtemp(prefix="osipi-bench-scaleout-"))
    t0 = time.perf_counter()
    load_before = list(os.getloadavg())
    try:
        rows = bench(size["tags"], size["hours"], size["configs"], scratch)
    except BaseException:
        print(f"scale-out failed; logs kept in {scratch}", flush=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    out = {
        "tags": size["tags"],
        "hours": size["hours"],
        "cores": CORES,
        "load_before": load_before,
        "load_after": list(os.getloadavg()),
        "total_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "verdict": verdict(rows),
    }
    print("\n".join(render(rows)))
    print(out["verdict"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
