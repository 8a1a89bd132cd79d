"""Local Spark for the Spark tests: one SparkSession per test session, Delta from jars fetched at install time.

`make venv` fetches the jars with Maven (jars/pom.xml → jars/spark/); Spark gets them through `spark.jars`, never
through `spark.jars.packages`/Ivy, so nothing is downloaded while the tests run. Missing jars or pyspark fail the
tests that need them (they are part of the default suite), with the command that fixes it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

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
    builder = SparkSession.builder
    for key, value in spark_settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
