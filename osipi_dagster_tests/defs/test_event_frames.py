"""Event frames by UTC day: exact frames from the emulator, in-progress frames, idempotent reruns, attributes.

The shared emulator's clock is frozen at 2024-05-01T12:00Z, so frames of that day are partly still running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from osipi_dagster.defs.pi.event_frames import event_frame_attributes, event_frames
from osipi_dagster_tests.defs.conftest import NOW, Model, read_table, us

DAY = "2024-05-01"


def expected_frames(model: Model, day: datetime) -> dict[str, tuple[int, int | None]]:
    """web_id -> (start µs, end µs or None if in progress) of every frame (children too) starting in `day`."""
    start_us, end_us = us(day), us(day + timedelta(days=1))
    now_us = us(NOW)
    out: dict[str, tuple[int, int | None]] = {}
    for db in model.af.databases:
        stack = list(model.af.frames_overlapping(db, start_us, end_us, now_us))
        while stack:
            ef = stack.pop()
            stack.extend(ef.children)
            if start_us <= ef.start_us < end_us and ef.start_us <= now_us:
                out[ef.web_id] = (ef.start_us, model.af.end_us(ef, now_us))
    return out


def test_day_of_event_frames_with_in_progress(resources: dict[str, object], lake: Path, model: Model) -> None:
    result = dg.materialize([event_frames, event_frame_attributes], resources=resources, partition_key=DAY)
    frames = read_table(lake, "event_frames")
    day = datetime(2024, 5, 1, tzinfo=UTC)
    expected = expected_frames(model, day)
    got = {
        w: (s, e)
        for w, s, e in frames.select(
            "web_id", pl.col("start").dt.epoch("us"), pl.col("end").dt.epoch("us")
        ).iter_rows()
    }
    assert got == expected and len(expected) > 10
    open_frames = frames.filter(pl.col("in_progress"))
    assert open_frames.height == sum(1 for _, e in expected.values() if e is None) > 0
    assert open_frames["end"].null_count() == open_frames.height
    assert frames.filter(~pl.col("in_progress"))["end"].null_count() == 0
    assert frames["date"].unique().to_list() == [day.date()]
    md = result.asset_materializations_for_node("pi__event_frames")[0].metadata
    assert md["in_progress"].value == open_frames.height and md["event_frames"].value == frames.height

    attributes = read_table(lake, "event_frame_attributes")
    assert set(attributes["event_frame_web_id"].unique().to_list()) <= set(expected)
    assert attributes.height > 0
    assert (attributes["event_frame_start"] >= day).all() and (
        attributes["event_frame_start"] < day + timedelta(days=1)
    ).all()

    # Rerun: same frames, no duplicates; the neighbouring day is untouched.
    dg.materialize([event_frames], resources=resources, partition_key="2024-04-30")
    before = read_table(lake, "event_frames").filter(pl.col("date") == datetime(2024, 4, 30).date())
    dg.materialize([event_frames, event_frame_attributes], resources=resources, partition_key=DAY)
    again = read_table(lake, "event_frames")
    assert (
        again.filter(pl.col("date") == day.date())
        .drop("ingested_at")
        .sort("web_id")
        .equals(frames.drop("ingested_at").sort("web_id"))
    )
    assert (
        again.filter(pl.col("date") == datetime(2024, 4, 30).date())
        .sort("web_id")
        .equals(before.sort("web_id"))
    )
    assert again["web_id"].is_unique().all()
    assert read_table(lake, "event_frame_attributes").height == attributes.height
