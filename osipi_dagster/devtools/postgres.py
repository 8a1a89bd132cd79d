"""A throwaway PostgreSQL on 127.0.0.1 for tests and the production demo profile (no Dagster here).

Uses Debian's `postgresql` package binaries (`/usr/lib/postgresql/<major>/bin`, or `OSIPI_PG_BIN`, or PATH). The
cluster lives in a data directory of the caller's choosing: `initdb` creates it (password auth on TCP, trust on
its own unix socket, which lives in the data directory), `postgres` serves it on 127.0.0.1 and a free port, and
`stop()` ends it by PID. As root, the server runs as the `postgres` user (initdb refuses root) through
`setpriv`, which execs, so the PID we hold is the postmaster's. The system-wide cluster is never touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

USER = "osipi"
DATABASE = "dagster"
# Settings for a disposable cluster: no fsync (a crash loses the cluster, never a test's or demo's data lake).
FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed (Debian: apt-get install postgresql)."""


def bin_dir() -> Path:
    """The directory holding initdb, postgres and pg_isready."""
    if os.environ.get("OSIPI_PG_BIN"):
        return Path(os.environ["OSIPI_PG_BIN"])
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH, "
        "OSIPI_PG_BIN unset); Debian: apt-get install postgresql"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_server_user(cmd: list[str]) -> list[str]:
    """`cmd` run as the `postgres` user when we are root (initdb and postgres refuse root), else unchanged."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable(
            "running as root but there is no 'postgres' user to run the server as"
        ) from exc
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *cmd]


def hand_over(path: Path) -> None:
    """As root, give `path` to the postgres user and check it can reach it (every parent must be searchable)."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise PermissionError(
                f"the postgres user cannot reach {path}: {parent} is not searchable by others "
                f"(choose a data directory under a world-searchable parent, e.g. {tempfile.gettempdir()})"
            )


@dataclass
class Postgres:
    """A running server: connection details, its process and log."""

    data_dir: Path
    port: int
    password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    user: str = USER
    database: str = DATABASE
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.production.yaml reads."""
        return {
            "OSIPI_PG_HOST": self.host,
            "OSIPI_PG_PORT": str(self.port),
            "OSIPI_PG_USER": self.user,
            "OSIPI_PG_PASSWORD": self.password,
            "OSIPI_PG_DB": self.database,
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL if it has not exited within `timeout` seconds."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def initdb(data_dir: Path, password: str) -> None:
    """Create a cluster in `data_dir` (missing or empty) with superuser `osipi`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    hand_over(data_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pw:
        pw.write(password + "\n")
    try:
        os.chmod(pw.name, 0o644)
        cmd = [str(bin_dir() / "initdb"), "-D", str(data_dir), "-U", USER, f"--pwfile={pw.name}"]
        cmd += ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C"]
        done = subprocess.run(as_server_user(cmd), capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(pw.name)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def wait_ready(server: Postgres, timeout: float) -> None:
    """Poll pg_isready (bounded); fail early with the server log if the postmaster exits."""
    deadline = time.monotonic() + timeout
    cmd = [str(bin_dir() / "pg_isready"), "-q", "-h", server.host, "-p", str(server.port), "-t", "2"]
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        if subprocess.run(cmd, timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    server.stop()
    raise TimeoutError(
        f"postgres not ready on port {server.port} after {timeout:.0f} s:\n{server.log()[-3000:]}"
    )


def create_database(server: Postgres) -> None:
    """Create the `dagster` database over the server's own unix socket, unless it exists."""
    psql = [str(bin_dir() / "psql"), "-h", str(server.data_dir), "-p", str(server.port), "-U", server.user]
    exists = subprocess.run(
        [*psql, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{server.database}'"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if exists.stdout.strip() == "1":
        return
    made = subprocess.run(
        [*psql, "-d", "postgres", "-c", f"CREATE DATABASE {server.database}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if made.returncode != 0:
        raise RuntimeError(f"creating database {server.database} failed: {made.stderr.strip()}")


def start_postgres(
    data_dir: Path,
    *,
    password: str = "osipi-local",
    port: int | None = None,
    durable: bool = False,
    timeout: float = 60.0,
) -> Postgres:
    """Start a server on `data_dir` (initdb first if it holds no cluster), ready and with database `dagster`.

    The password is set at initdb; an existing cluster keeps the one it was created with.
    """
    data_dir = data_dir.resolve()
    if not (data_dir / "PG_VERSION").exists():
        initdb(data_dir, password)
    if stale_pid_file(data_dir):
        (data_dir / "postmaster.pid").unlink()
    port = port or free_port()
    log_path = data_dir.parent / f"{data_dir.name}.log"
    cmd = [str(bin_dir() / "postgres"), "-D", str(data_dir), "-p", str(port)]
    cmd += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data_dir}"]
    cmd += ["-c", "max_connections=200", *(() if durable else FAST)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            as_server_user(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Postgres(data_dir=data_dir, port=port, password=password, process=process, log_path=log_path)
    try:
        wait_ready(server, timeout)
        create_database(server)
    except BaseException:
        server.stop()
        raise
    return server


def stale_pid_file(data_dir: Path) -> bool:
    """True when `data_dir` has a postmaster.pid left by a server that is gone (a killed demo)."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return True
    return not Path(f"/proc/{pid}").exists()
