"""`osipi stream land|listen --connection NAME`: one lander (and listener) per connection, on that connection's spool
(`./data/spool/<name>` by default) and lake sub-path, with its health endpoint on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from osipi_dagster.cli.connection import load
from osipi_dagster.cli.stream import ANY_FREE_PORT, forwarded
from osipi_dagster.lib.streaming import Spool
from osipi_dagster_tests.components.test_streaming import spooled
from osipi_dagster_tests.streaming.helpers import lander_commits, wait_for

YAML = """\
type: osipi_dagster.PIConnection
attributes:
  pi_web_api_url: "{{ env.PLANT_X_URL }}"
  lake_uri: LAKE
  lake_path: plants/x
"""


def write_connection(root: Path, lake: Path, extra: str = "") -> Path:
    path = root / "plant_x" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(YAML.replace("LAKE", str(lake)) + extra)
    return path


def test_forwarded_options_default_to_the_connections_spool_lake_and_a_free_port(tmp_path: Path) -> None:
    path = write_connection(tmp_path, tmp_path / "lake", f"  stream: {{directory: {tmp_path / 'sp'}}}\n")
    loaded = load(str(path), {"PLANT_X_URL": "https://pi.example/piwebapi"})
    argv = forwarded("listen", loaded, ["--channel-size", "50"])
    assert argv == ["listen", "--channel-size", "50", "--spool", str(tmp_path / "sp"),
                    "--lake", f"{tmp_path / 'lake'}/plants/x", "--health-address", ANY_FREE_PORT]  # fmt: skip
    # Options given explicitly win.
    argv = forwarded("land", loaded, ["--spool=/elsewhere", "--health-address", "off"])
    assert argv == [
        "land",
        "--spool=/elsewhere",
        "--health-address",
        "off",
        "--lake",
        f"{tmp_path / 'lake'}/plants/x",
    ]


def test_a_connections_lander_lands_its_spool_into_its_lake_sub_path(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    path = write_connection(tmp_path / "defs", lake)
    spool_dir = (
        tmp_path / "data" / "spool" / "plant_x"
    )  # the default: ./data/spool/<name>, from the working dir
    with Spool(spool_dir, max_segment_age_s=3600) as spool:
        for n in (2, 5):
            spool.append(spooled(n))
            spool.seal()
    env = {**os.environ, "PLANT_X_URL": "http://127.0.0.1:9/piwebapi"}
    cmd = [sys.executable, "-m", "osipi_dagster.cli", "stream", "land", "--connection", str(path),
           "--land-min-interval", "0", "--log-level", "WARNING"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True)
    try:
        table = lake / "plants" / "x"
        wait_for(lambda: sum(int(c["values"]) for c in lander_commits(table).values()) == 7,  # type: ignore[call-overload]
                 60, "the 7 spooled values landed in the connection's lake sub-path")  # fmt: skip
        address = (spool_dir / "land.address").read_text()
        assert address.startswith("127.0.0.1:") and not address.endswith(":9809")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0
    assert not (lake / "pi_timeseries").exists()  # nothing at the lake root: the connection's sub-path only
