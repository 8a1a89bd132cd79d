"""`make demo`: two PI sites in one code location, landed in one Delta lake, served in the Dagster UI.

Site 1 is the environment connection (PI_WEB_API_URL: the user's PI, or an emulator started here; group `pi`), site 2
the YAML connection `site_b` in scripts/demo_connections (loaded with OSIPI_CONNECTIONS_DIR, as a deployment loads
its own configuration folder; group `site_b`), against a second emulator with another seed, tag count and AF
database. The demo lands each site's catalogue, AF, last closed hours and yesterday's event frames, prints the lake's
tables, then serves `dagster dev`. With DEMO_HEADLESS=1 it stops after the summary and exits 0. Every process it
starts is stopped on exit or Ctrl-C, by process group and then by PID (`dagster dev` can leave children behind).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from mock_pi.process import Emulator, free_port, start_emulator  # noqa: E402

DEMO_DIR = ROOT / ".demo"
DAGSTER_HOME = ROOT / ".dagster_home"
# The demo's YAML connections (site_b), loaded by the code location through OSIPI_CONNECTIONS_DIR.
CONNECTIONS_DIR = ROOT / "scripts" / "demo_connections"
UI_PORT = int(os.environ.get("DEMO_UI_PORT", "3000"))
TAGS = os.environ.get("DEMO_TAGS", "1000")
HOURS = int(os.environ.get("DEMO_HOURS", "3"))
# Run logs at INFO on the console (progress lines); the full DEBUG event log is in the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
AF_SERVER = "\\\\PIAF01"


@dataclass(frozen=True)
class DemoSite:
    """One emulated site: its emulator's seed, tag count and AF database, and the variables naming its URL."""

    label: str
    seed: int
    tags: str
    af_database: str
    url_var: (
        str  # the connection's URL variable: PI_WEB_API_URL (environment connection) or its YAML's reference
    )
    job_prefix: str  # "" for the environment connection, "<name>__" for a YAML connection

    def emulator_args(self) -> tuple[str, ...]:
        # Two AF databases (Plant Operations, Mining Site); each connection selects one.
        return ("--seed", str(self.seed), "--tags", self.tags, "--af-databases", "2", "--admin")


SITES = (
    DemoSite("site 1 (environment connection, group pi)", 42, TAGS, "Plant Operations", "PI_WEB_API_URL", ""),
    DemoSite("site 2 (YAML connection site_b)", 7, os.environ.get("DEMO_SITE_B_TAGS", "400"), "Mining Site",
             "SITE_B_URL", "site_b__"),
)  # fmt: skip


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def start_site(site: DemoSite) -> Emulator:
    emulator = start_emulator(*site.emulator_args(), log_dir=DEMO_DIR, timeout=60)
    say(
        f"  {site.label}: emulator seed {site.seed}, {site.tags} tags at {emulator.api} (pid {emulator.process.pid})"
    )
    return emulator


@contextmanager
def two_sites() -> Iterator[None]:
    """Start the emulators (both at once) and set the variables of both connections; stop them on exit.

    A user's PI_WEB_API_URL stays site 1 (no emulator for it); site 2 is always an emulator.
    """
    wanted = [s for s in SITES if not (s.url_var == "PI_WEB_API_URL" and os.environ.get("PI_WEB_API_URL"))]
    if len(wanted) < len(SITES):
        say(f"site 1: using PI Web API at {os.environ['PI_WEB_API_URL']} (PI_WEB_API_URL)")
    else:
        os.environ["PI_AF_DATABASES"] = f"{AF_SERVER}\\{SITES[0].af_database}"
    say("starting the mock_pi emulators (real-time clock) on 127.0.0.1 ...")
    with ThreadPoolExecutor(len(wanted)) as pool:
        futures = [pool.submit(start_site, site) for site in wanted]
        wait(futures)
    started = [f.result() for f in futures if f.exception() is None]
    try:
        for site, future in zip(wanted, futures, strict=True):
            os.environ[site.url_var] = future.result().api  # raises the first start failure
        os.environ["OSIPI_CONNECTIONS_DIR"] = str(CONNECTIONS_DIR)
        yield
    finally:
        for emulator in started:
            emulator.stop()
        say("emulators stopped")


def prepare_dagster_home() -> None:
    DAGSTER_HOME.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", DAGSTER_HOME / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(DAGSTER_HOME)


def apply_pool_limits(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Each connection's `pool_limit` set on the instance, as `osipi pools apply` does (site_b asks for 2)."""
    from osipi_dagster.cli.pools import apply_pools

    for pool in apply_pools(instance, defs):
        if pool.limit is not None:
            say(f"  pool {pool.pool} ({pool.connection}): {pool.limit} slots ({pool.action})")


def materialize_initial_assets() -> None:
    """Per site: the main job (catalogue, AF, the last closed hours of recorded values) and yesterday's event frames."""
    from osipi_dagster.definitions import defs as load_defs

    defs: dg.Definitions = load_defs()
    instance = dg.DagsterInstance.get()
    apply_pool_limits(defs, instance)

    def run(job_name: str, first: str, last: str) -> None:
        started = time.monotonic()
        job = defs.resolve_job_def(job_name)
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        result = job.execute_in_process(run_config=QUIET, instance=instance, tags=tags, raise_on_error=False)
        span = first if first == last else f"{first}...{last}"
        status = "ok" if result.success else "FAILED"
        say(f"  {status:6} {job_name} [{span}] ({time.monotonic() - started:.1f} s)")
        if not result.success:
            raise SystemExit(f"demo: {job_name} failed for {span}; see the run in the Dagster UI (make demo)")

    def closed_partitions(job_name: str) -> list[str]:
        pdef = defs.resolve_job_def(job_name).partitions_def
        assert pdef is not None, f"{job_name} is not partitioned"
        return pdef.get_partition_keys(dynamic_partitions_store=instance)

    say("materializing the initial assets of both sites ...")
    for site in SITES:
        hours = closed_partitions(f"{site.job_prefix}pi_ingest_job")[-HOURS:]
        run(f"{site.job_prefix}pi_ingest_job", hours[0], hours[-1])
        yesterday = closed_partitions(f"{site.job_prefix}pi_event_frames_job")[-1]
        run(f"{site.job_prefix}pi_event_frames_job", yesterday, yesterday)


def print_summary(lake_uri: str) -> None:
    """Tables, rows and time range of every Delta table under the lake root, read back with deltalake."""
    import polars as pl
    from deltalake import DeltaTable

    root = Path(lake_uri)
    say(f"Delta tables under {root.resolve()}:")
    for table_dir in sorted(p for p in root.rglob("_delta_log") if p.is_dir()):
        uri = str(table_dir.parent)
        frame = pl.from_arrow(DeltaTable(uri).to_pyarrow_table())
        assert isinstance(frame, pl.DataFrame)
        time_cols = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and c != "ingested_at"]
        span = ""
        if time_cols and frame.height:
            col = "timestamp" if "timestamp" in time_cols else time_cols[0]
            span = f"  {col} {frame[col].min()} .. {frame[col].max()}"
        say(f"  {table_dir.parent.relative_to(root)!s:28} {frame.height:>10,} rows{span}")


def descendants(pid: int) -> list[int]:
    """All live descendants of pid, from /proc (so children that left the process group are found too)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, wait, then SIGKILL any survivor by PID."""
    pids = [proc.pid, *descendants(proc.pid)]
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    deadline = time.monotonic() + 10
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # bounded wait for a terminated child to exit
        if Path(f"/proc/{pid}").exists():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def start_ui(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`dagster dev` on 127.0.0.1:port in its own process group (stop it with stop_tree)."""
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml")]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def serve_ui(env: dict[str, str]) -> None:
    port = UI_PORT if UI_PORT else free_port()
    proc = start_ui(env, port)
    say(
        f"Dagster UI: http://127.0.0.1:{port}/asset-groups  (Ctrl-C stops the UI, the daemon and the emulators)"
    )

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Handle the signals explicitly: a shell may start us with SIGINT ignored (background jobs, CI).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        proc.wait()
    except KeyboardInterrupt:
        say("stopping ...")
    finally:
        stop_tree(proc)
        say("Dagster stopped")


def main() -> int:
    if os.environ.get("OSIPI_DEMO_PROFILE") == "production":
        from demo_production import (
            main as production_main,  # Postgres + daemon + queued runs (docs/deploy.md)
        )

        return production_main()
    DEMO_DIR.mkdir(exist_ok=True)
    prepare_dagster_home()
    os.environ.setdefault("OSIPI_LAKE_URI", str(ROOT / "data" / "lake"))
    with two_sites():
        materialize_initial_assets()
        print_summary(os.environ["OSIPI_LAKE_URI"])
        if os.environ.get("DEMO_HEADLESS", "") not in ("", "0", "false"):
            say("DEMO_HEADLESS set: not serving the UI")
            return 0
        serve_ui(dict(os.environ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
