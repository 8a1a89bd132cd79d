"""Local Spark for the Spark tests: one SparkSession per test session, Delta from jars fetched at install time.

`make venv` fetches the jars with Maven (jars/pom.xml → jars/spark/); Spark gets them through `spark.jars`, never
through `spark.jars.packages`/Ivy, so nothing is downloaded while the tests run. Missing jars or pyspark fail the
tests that need them (they are part of the default suite), with the command that fixes it.

`uc_server` is the Unity Catalog REST emulator (uc_emulator.py) on a free loopback port: the open-source server
is not served by the Maven registry these machines reach. `landed_lake` is a lake the Dagster assets wrote.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import httpx
import pytest

from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster_tests.defs.conftest import make_resources
from osipi_dagster_tests.emulator import PROJECT_ROOT, Emulator, free_port, stop_process

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JARS_DIR = Path(__file__).resolve().parents[2] / "jars" / "spark"
FIX = "run `make venv` (it installs the `spark` extra and fetches the jars with Maven into jars/spark/)"


def spark_jars() -> list[Path]:
    """The jars `make venv` fetched; fails the calling test when they are missing."""
    jars = sorted(JARS_DIR.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        pytest.fail(f"no Delta jars in {JARS_DIR}: {FIX}", pytrace=False)
    return jars


def spark_conf(warehouse: Path, local_dir: Path) -> dict[str, str]:
    """Spark settings for a small, quiet, loopback-only local session with Delta."""
    return {
        "spark.master": "local[2]",
        "spark.app.name": "osipi-dagster-tests",
        "spark.jars": ",".join(str(j) for j in spark_jars()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.local.dir": str(local_dir),
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
    }


def submit_args(conf: dict[str, str]) -> str:
    """The same settings as PYSPARK_SUBMIT_ARGS, for a child process that calls `SparkSession.builder.getOrCreate()`."""
    parts = [f"--master {conf['spark.master']}"]
    parts += [f"--conf {k}={v}" for k, v in conf.items() if k != "spark.master"]
    return " ".join(parts) + " pyspark-shell"


@pytest.fixture(scope="session")
def spark_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The session's Spark settings (jars, Delta, loopback, scratch dirs); reusable by child processes."""
    root = tmp_path_factory.mktemp("spark")
    return spark_conf(root / "warehouse", root / "local")


@pytest.fixture(scope="session")
def spark(spark_settings: dict[str, str]) -> Iterator[SparkSession]:
    """One local[2] SparkSession with Delta for the whole test session; stopped at teardown."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail(f"pyspark is not installed: {FIX}", pytrace=False)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The JVM starts the Python data source planner with $PYSPARK_PYTHON, not spark.pyspark.python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in spark_settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@dataclass
class UCServer:
    """A running Unity Catalog endpoint: `url` is the server root, `token` its bearer token."""

    url: str
    token: str
    process: subprocess.Popen[bytes]

    def writes(self) -> int:
        """Mutating calls the server has accepted so far (emulator counter)."""
        response = httpx.get(f"{self.url}/_emulator/writes", timeout=5)
        response.raise_for_status()
        return int(response.json()["writes"])


@pytest.fixture(scope="session")
def uc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UCServer]:
    """The UC REST emulator on 127.0.0.1 for the whole session, with a token; stopped by PID at teardown."""
    workdir = tmp_path_factory.mktemp("uc_server")
    port, token = free_port(), secrets.token_urlsafe(16)
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "osipi_dagster_tests.spark.uc_emulator", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "UC_EMULATOR_TOKEN": token},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = UCServer(url=f"http://127.0.0.1:{port}", token=token, process=process)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"UC server exited with {process.returncode}: {(workdir / 'server.log').read_text()}"
                )
            try:
                server.writes()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("UC server did not answer within 30 s")
                time.sleep(0.05)  # bounded poll of the health endpoint, not a synchronisation sleep
        yield server
    finally:
        stop_process(process)
        log.close()


LANDED_HOUR = "2024-05-01-09:00"


@pytest.fixture(scope="session")
def landed_lake(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with pi_points and one hour of pi_timeseries, written by the Dagster assets; read it, never write."""
    lake = tmp_path_factory.mktemp("landed_lake") / "lake"
    resources = make_resources(emulator.api, lake)
    assert dg.materialize([pi_points], resources=resources).success
    assert dg.materialize([pi_timeseries], resources=resources, partition_key=LANDED_HOUR).success
    return lake
