"""OSIPI_LAKE_URI=s3://… works end to end: assets land in an S3-compatible object store through deltalake.

A real moto S3 server on 127.0.0.1 stands in for AWS; the tables are read back with polars' Delta reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import dagster as dg
import httpx
import polars as pl
import pytest
from dagster_deltalake import S3Config
from dagster_deltalake.config import ClientConfig as DeltaClientConfig

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster_tests.emulator import Emulator, free_port, stop_process

HOUR = "2024-05-01-09:00"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                httpx.get(endpoint, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto S3 server did not start") from None
                time.sleep(0.05)  # bounded readiness poll
        httpx.put(f"{endpoint}/lake-bucket").raise_for_status()
        yield endpoint
    finally:
        stop_process(proc)


def test_assets_land_in_s3_and_reruns_stay_idempotent(emulator: Emulator, s3_endpoint: str) -> None:
    options = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        # A single writer here; production S3 needs a locking provider or conditional puts (docs/lake.md).
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    resources = {
        "pi": PIWebAPIResource(pi_web_api_url=emulator.api, tag_filter="U1*"),
        "lake": LakeResource(root_uri="s3://lake-bucket/osipi", storage_options_json=json.dumps(options)),
    }
    catalogue = dg.materialize([pi_points], resources=resources)
    assert catalogue.success
    first = dg.materialize([pi_timeseries], resources=resources, partition_key=HOUR)
    again = dg.materialize([pi_timeseries], resources=resources, partition_key=HOUR)
    assert first.success and again.success

    points = pl.read_delta("s3://lake-bucket/osipi/pi_points", storage_options=options)
    values = pl.read_delta("s3://lake-bucket/osipi/pi_timeseries", storage_options=options)
    landed = first.asset_materializations_for_node("pi__pi_timeseries")[0].metadata["values"].value
    assert points.height == 500
    assert values.height == landed > 0  # the rerun replaced the hour instead of appending to it
    assert values.select("web_id", "timestamp", "ordinal").is_duplicated().sum() == 0
    assert set(values["tag"].unique()) <= set(points["name"])


def test_typed_storage_config_reaches_s3(emulator: Emulator, s3_endpoint: str) -> None:
    """The same lake through dagster-deltalake's typed S3Config (what the UI shows), the secret key an EnvVar."""
    lake = LakeResource(
        root_uri="s3://lake-bucket/typed",
        storage=S3Config(
            access_key_id="test",
            secret_access_key=dg.EnvVar("OSIPI_TEST_S3_SECRET"),
            region="us-east-1",
            endpoint=s3_endpoint,
            allow_unsafe_rename=True,  # single writer, as above
        ),
        client_options=DeltaClientConfig(allow_http=True),
    )
    resources = {"pi": PIWebAPIResource(pi_web_api_url=emulator.api, tag_filter="U1*"), "lake": lake}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OSIPI_TEST_S3_SECRET", "test")
        assert dg.materialize([pi_points], resources=resources).success
    options = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    assert pl.read_delta("s3://lake-bucket/typed/pi_points", storage_options=options).height == 500
