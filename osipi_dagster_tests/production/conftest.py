"""Fixtures of the production profile: a throwaway PostgreSQL on 127.0.0.1 and a DAGSTER_HOME using it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from osipi_dagster.devtools.postgres import Postgres, PostgresUnavailable, bin_dir, start_postgres

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_YAML = ROOT / "deploy" / "dagster.production.yaml"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One server per session (its own data directory, removed afterwards); skipped where Postgres is absent,
    unless OSIPI_REQUIRE_POSTGRES=1 (CI, after installing it) makes that a failure."""
    try:
        bin_dir()
    except PostgresUnavailable as exc:
        if os.environ.get("OSIPI_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(str(exc))
    # Under the system temp dir, searchable by others: as root the server runs as the postgres user.
    scratch = Path(tempfile.mkdtemp(prefix="osipi-pg-"))
    scratch.chmod(0o755)
    try:
        with start_postgres(scratch / "data") as server:
            yield server
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres) -> Iterator[Postgres]:
    """The session's server with an empty `dagster` database for this test."""
    import psycopg2

    admin = postgres_server.url.rsplit("/", 1)[0] + "/postgres"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {postgres_server.database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {postgres_server.database}")
    conn.close()
    yield postgres_server


@pytest.fixture
def production_home(tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME with deploy/dagster.production.yaml, its Postgres variables set in this process."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    return home
