"""`OSIPI_DEMO_PROFILE=production make demo`: the production profile on real components, on one host.

PostgreSQL (Debian's package, a cluster in .demo/postgres on 127.0.0.1) holds Dagster's runs, event log and
schedules (deploy/dagster.production.yaml); the emulator stands in for PI; `dagster-daemon` launches every run
from the queue within the per-connection and per-pool limits. The demo submits the catalogue run, then a backfill
of the last DEMO_HOURS closed hours (one run per partition, each a queued run the daemon launches), waits for them
and prints the lake. With DEMO_HEADLESS=1 it then exits 0; otherwise it serves the UI until Ctrl-C. Every process
it started (Postgres, emulator, daemon, webserver, their runs) is stopped by PID on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus  # noqa: E402
from demo import DEMO_DIR, UI_PORT, print_summary, say, stop_tree  # noqa: E402

from mock_pi.process import free_port, start_emulator  # noqa: E402
from osipi_dagster.devtools.backfill import submit as submit_backfill  # noqa: E402
from osipi_dagster.devtools.postgres import Postgres, start_postgres  # noqa: E402

HOME = DEMO_DIR / "dagster_home_production"
PG_DIR = DEMO_DIR / "postgres"
BIN = Path(sys.executable).parent
WORKSPACE = ["-w", str(ROOT / "workspace.yaml")]
# Tags every demo run carries; the instance's tag_concurrency_limits apply per connection and per PI pool.
RUN_TAGS = {"osipi/connection": "default", "osipi/pool": "pi_web_api"}
LAND_TIMEOUT_S = float(os.environ.get("DEMO_LAND_TIMEOUT", "900"))
TAGS = os.environ.get("DEMO_TAGS", "1000")
HOURS = int(os.environ.get("DEMO_HOURS", "3"))


@contextmanager
def pi_web_api() -> Iterator[str]:
    """The PI Web API: the user's (PI_WEB_API_URL set) or an emulator started here (stopped on exit)."""
    if os.environ.get("PI_WEB_API_URL"):
        say(f"using PI Web API at {os.environ['PI_WEB_API_URL']}")
        yield os.environ["PI_WEB_API_URL"]
        return
    emulator = start_emulator("--seed", "42", "--tags", TAGS, "--admin", log_dir=DEMO_DIR, timeout=60)
    say(f"emulator ({TAGS} tags) ready at {emulator.api} (pid {emulator.process.pid})")
    try:
        yield emulator.api
    finally:
        emulator.stop()
        say("emulator stopped")


@contextmanager
def postgres() -> Iterator[Postgres]:
    """The demo's cluster in .demo/postgres (kept between demos), or in a temp dir (removed) when the project
    directory is not reachable by the postgres user (a root-only checkout)."""
    scratch: Path | None = None
    try:
        server = start_postgres(PG_DIR, durable=True)
    except PermissionError as exc:
        scratch = Path(tempfile.mkdtemp(prefix="osipi-demo-pg-"))
        scratch.chmod(0o755)
        say(f"{exc}; using {scratch} instead")
        server = start_postgres(scratch / "data", durable=True)
    say(f"PostgreSQL ready on 127.0.0.1:{server.port} (pid {server.process.pid}, data {server.data_dir})")
    try:
        yield server
    finally:
        server.stop()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        say("PostgreSQL stopped")


@contextmanager
def started(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session, its output in `log`; stopped with its whole tree on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_tree(proc)


def dagster(env: dict[str, str], *args: str) -> str:
    """A `dagster` CLI command against the workspace; its output, or SystemExit with it on failure."""
    done = subprocess.run(
        [str(BIN / "dagster"), *args, *WORKSPACE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"demo: dagster {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def last_hours(job_name: str, n: int) -> list[str]:
    """The job's partition keys of the last `n` closed hours (every shard of each, if the job is sharded)."""
    import dagster as dg

    from osipi_dagster.definitions import defs as load_defs

    pdef = load_defs().resolve_job_def(job_name).partitions_def
    assert pdef is not None, f"{job_name} is not partitioned"
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        # Hour × shard: every shard of each of the last n hours, as "<hour>|<shard>" keys.
        dims = {d.name: d.partitions_def for d in pdef.partitions_defs}
        [time_dim] = [name for name, d in dims.items() if isinstance(d, dg.TimeWindowPartitionsDefinition)]
        [other] = [name for name in dims if name != time_dim]
        hours = dims[time_dim].get_partition_keys()[-n:]
        return [
            str(dg.MultiPartitionKey({time_dim: h, other: s}))
            for h in hours
            for s in dims[other].get_partition_keys()
        ]
    with dg.DagsterInstance.get() as instance:
        return pdef.get_partition_keys(dynamic_partitions_store=instance)[-n:]


def wait_runs(run_ids_of: Callable[[Any], list[str]], what: str, timeout: float) -> list[object]:
    """Poll the instance (bounded) until every run `run_ids_of()` returns has finished; the run records."""
    import dagster as dg

    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.get() as instance:
        while time.monotonic() < deadline:
            run_ids = run_ids_of(instance)  # [] while not ready (runs not created yet)
            records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids)) if run_ids else []
            if records and all(r.dagster_run.is_finished for r in records):
                return records
            time.sleep(1)
    raise SystemExit(f"demo: {what} not finished after {timeout:.0f} s (see {HOME / 'daemon.log'})")


def land(env: dict[str, str]) -> bool:
    """Catalogue run, then the backfill of the last hours, all through the queue; True when every run succeeded."""
    import dagster as dg

    tags = json.dumps(RUN_TAGS)
    say("submitting the catalogue run to the queue ...")
    before = time.time()
    dagster(env, "job", "launch", "-j", "pi_catalogue_job", "--tags", tags)

    def catalogue_runs(instance: dg.DagsterInstance) -> list[str]:
        runs = instance.get_runs(dg.RunsFilter(job_name="pi_catalogue_job", created_after=_utc(before)))
        return [r.run_id for r in runs]

    [catalogue] = wait_runs(catalogue_runs, "the catalogue run", LAND_TIMEOUT_S)
    say(f"  {catalogue.dagster_run.status.value:8} pi_catalogue_job ({_took(catalogue)})")  # type: ignore[attr-defined]
    if catalogue.dagster_run.status != dg.DagsterRunStatus.SUCCESS:  # type: ignore[attr-defined]
        return False

    keys = last_hours("pi_timeseries_job", HOURS)
    say(f"submitting a backfill of {len(keys)} partitions ({keys[0]} .. {keys[-1]}) ...")
    # An asset backfill (not `dagster job backfill`, whose backfill is finished at submission so its failed
    # runs are not retried): the daemon queues its runs, the run queue's limits apply, run retries too.
    backfill_id = submit_backfill("pi/pi_timeseries", keys, RUN_TAGS)

    def backfill_runs(instance: dg.DagsterInstance) -> list[str]:
        """The backfill's runs (retries included) once the daemon has finished the backfill; [] before."""
        backfill = instance.get_backfill(backfill_id)
        if backfill is None or backfill.status not in BULK_ACTION_TERMINAL_STATUSES:
            return []
        return [r.run_id for r in instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))]

    records = wait_runs(backfill_runs, f"backfill {backfill_id}", LAND_TIMEOUT_S)
    for r in sorted(records, key=lambda r: r.create_timestamp):  # type: ignore[attr-defined]
        run = r.dagster_run  # type: ignore[attr-defined]
        cells = run.tags.get("dagster/partition") or "{}..{}".format(
            run.tags.get("dagster/asset_partition_range_start"),
            run.tags.get("dagster/asset_partition_range_end"),
        )
        retry = f", retry {run.tags['dagster/retry_number']}" if "dagster/retry_number" in run.tags else ""
        say(f"  {run.status.value:8} pi_timeseries [{cells}] ({_took(r)}{retry})")
    with dg.DagsterInstance.get() as instance:
        status = instance.get_backfill(backfill_id).status  # type: ignore[union-attr]
    say(f"backfill {backfill_id}: {status.value}")
    return status == BulkActionStatus.COMPLETED_SUCCESS


def _utc(ts: float) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def _took(record: object) -> str:
    start, end = record.start_time, record.end_time  # type: ignore[attr-defined]
    return f"{end - start:.1f} s" if start and end else "no timing"


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def catch_interrupts() -> None:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt (set explicitly: a shell may start us with SIGINT
    ignored, as background jobs and CI do)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def main() -> int:
    DEMO_DIR.mkdir(exist_ok=True)
    HOME.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.production.yaml", HOME / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(HOME)
    # Its own lake: the default demo lands other hours and a second site into data/lake.
    os.environ.setdefault("OSIPI_LAKE_URI", str(ROOT / "data" / "lake-production"))
    headless = os.environ.get("DEMO_HEADLESS", "") not in ("", "0", "false")
    with ExitStack() as stack:
        # Ctrl-C (or SIGTERM/SIGHUP) anywhere below unwinds the stack: every process is stopped, newest first.
        # Set explicitly: a shell may start us with SIGINT ignored (background jobs, CI).
        catch_interrupts()
        try:
            server = stack.enter_context(postgres())
            os.environ.update(server.env())
            os.environ["PI_WEB_API_URL"] = stack.enter_context(pi_web_api())
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            daemon = stack.enter_context(
                started([str(BIN / "dagster-daemon"), "run", *WORKSPACE], env, HOME / "daemon.log")
            )
            say(f"dagster-daemon started (pid {daemon.pid}, log {HOME / 'daemon.log'})")
            ok = land(env)
            print_summary(os.environ["OSIPI_LAKE_URI"])
            if not ok:
                say("some runs failed; see them in the Dagster UI (OSIPI_DEMO_PROFILE=production make demo)")
                return 1
            if headless:
                say("DEMO_HEADLESS set: not serving the UI")
                return 0
            port = UI_PORT or free_port()
            ui = [str(BIN / "dagster-webserver"), *WORKSPACE, "-h", "127.0.0.1", "-p", str(port)]
            webserver = stack.enter_context(started(ui, env, HOME / "webserver.log"))
            say(
                f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops the UI, the daemon, the emulator and Postgres)"
            )
            # Ours again: without this, Ctrl-C was ignored here (a call above replaced the SIGINT handler; Dagster
            # swaps handlers in dagster._utils.interrupts).
            catch_interrupts()
            try:
                webserver.wait()
                say("the webserver exited")
            except KeyboardInterrupt:
                say("stopping ...")  # the normal end of a demo serving the UI: exit 0
        except KeyboardInterrupt:
            say("stopping ...")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
