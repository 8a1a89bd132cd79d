"""Catch-up after an outage of hours: the listener is down for three hours of PI time while the hourly recorded
partition lands one of them; on restart the back-fill plus that partition leave no gap and no duplicate, the
archive keeps its hour, and memory stays bounded (catch-up reads in time slices, landings in slices of at most
max_batch_bytes of spool).

The emulator clock is frozen and moved with /admin/clock, so "three hours" take no time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.catalogue import pi_points
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.timeseries import pi_timeseries
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.streaming import ChannelListener, Spool, SpoolReader
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster.lib.streaming.spool import decode_records
from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.streaming.helpers import (
    assert_lake_equals_pi,
    lake_rows,
    lander_commits,
    recorded_between,
    wait_for,
)
from osipi_dagster_tests.streaming.test_listener import START, advance, server_time, web_ids

SLICE_S = 300.0  # seconds of PI time per catch-up read
SLICE = 24 << 10  # spool bytes per landing at most


def run_listener(
    emu: Emulator, spool_dir: Path, ids: list[str], move: str | None = None
) -> dict[str, object]:
    """A listener (in a thread): once every channel streams, the clock moves by `move`; it stops when every value
    PI archived up to then is spooled. Returns its final figures."""
    stop = threading.Event()
    with (
        PIWebAPIClient(ClientConfig(base_url=emu.api)) as client,
        Spool(spool_dir, max_segment_age_s=0.2, max_segment_bytes=16 << 10) as spool,
    ):
        listener = ChannelListener(
            client, spool, pl.DataFrame({"web_id": ids, "tag": None}), heartbeat_rate=2
        )
        thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: not listener.ready(), 60, "every channel connected and caught up")
            before = server_time(emu.root)
            if move:
                advance(emu, move)
            expected = recorded_between(emu.api, ids, before, server_time(emu.root)).height
            wait_for(
                lambda: listener.stats.values >= expected,
                60,
                f"the {expected} values archived since {before}",
            )
        finally:
            stop.set()
            thread.join(30)
        assert listener.error is None
        return listener.figures()


def test_outage_of_hours_backfill_and_hourly_partition_leave_no_gap(emulator_factory, tmp_path: Path) -> None:
    emu = emulator_factory(
        "--tags", "200", "--clock", f"frozen:{START}", "--channel-poll-ms", "50", "--admin"
    )
    ids = web_ids(emu.api)
    spool_dir, lake_dir = tmp_path / "spool", tmp_path / "lake"
    res = {
        "pi": PIWebAPIResource(pi_web_api_url=emu.api, tag_filter="*"),
        "lake": LakeResource(root_uri=str(lake_dir)),
    }
    assert dg.materialize([pi_points], resources=res).success  # the hourly partition reads its tags from it

    # Stream a few minutes, then the listener goes down for three hours of PI time.
    start = server_time(emu.root)
    run_listener(emu, spool_dir, ids, move="3m")
    started = datetime.fromisoformat(SpoolReader(spool_dir).listener_state()["started_at"])
    assert started == start
    advance(emu, "3h")
    down_until = server_time(emu.root)
    # Meanwhile the schedule landed the closed hour 13:00 from the archive.
    hour = datetime.fromisoformat("2024-05-01T13:00:00+00:00")
    assert dg.materialize([pi_timeseries], resources=res, partition_key="2024-05-01-13:00").success

    # Restart: the catch-up reads three hours in pages; the lander lands the backlog in slices.
    figures = run_listener(emu, spool_dir, ids)
    assert figures["gap_values"] > 0
    reader = SpoolReader(spool_dir)
    with Lander(Lake(str(lake_dir)), reader, max_batch_bytes=SLICE) as lander:
        while lander.land_once() is not None:
            pass

    until = min(datetime.fromisoformat(str(t)) for t in reader.watermarks()["covered_until"].to_list())
    pi = recorded_between(emu.api, ids, started, until)
    assert until >= down_until and pi.filter(pl.col("timestamp") > hour + timedelta(hours=1)).height > 0
    got = lake_rows(lake_dir)
    assert_lake_equals_pi(got.filter(pl.col("web_id").is_in(ids)), pi, started, until)
    # The archive keeps its hour; the back-fill of that hour was refused as superseded, not doubled.
    in_hour = got.filter((pl.col("timestamp") >= hour) & (pl.col("timestamp") < hour + timedelta(hours=1)))
    assert set(in_hour["source"]) == {"recorded"}
    assert lander.stats.values_superseded == in_hour.filter(pl.col("web_id").is_in(ids)).height > 0
    reports = lander_commits(lake_dir)
    # Bounded memory: no catch-up record above one page, the backlog landed in several slices.
    records = [
        f for s in reader.landed() for f in decode_records(s.path.read_bytes(), source="", strict=True)[0]
    ]
    gap_records = [f.height for f in records if f.height and f["origin"][0] == "gap"]
    backfilled = int(figures["gap_values"])  # type: ignore[call-overload]
    assert sum(gap_records) == backfilled  # three hours read in 5-minute slices
    assert len(gap_records) >= 10 and max(gap_records) <= backfilled / 10, gap_records
    assert len(reports) >= 4 and max(int(r["values"]) for r in reports.values()) < backfilled / 2
