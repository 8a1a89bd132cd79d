"""Lost commit races wait through the one retry policy (DeltaTableRef.commit_retry): lake writes and streamed
landing merges alike, with the policy's injectable sleep recorded (nothing here sleeps) and real Delta conflicts."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
import pytest

from osipi_dagster.lib.lake import Lake, LakeConflictError
from osipi_dagster.lib.lake.table import COMMIT_RETRY, DeltaTableRef
from osipi_dagster.lib.piwebapi.schema import VALUES_SCHEMA
from osipi_dagster.lib.streaming import STREAMED_SCHEMA
from osipi_dagster.lib.streaming.landing import insert_absent

from .conftest import at, hour_of, read_back
from .test_concurrency import one_file_table


def recording(ref: DeltaTableRef, waits: list[float], **numbers: float | int) -> DeltaTableRef:
    """`ref` whose commit races wait into `waits` (the default numbers unless overridden)."""
    policy = replace(COMMIT_RETRY, sleep=waits.append, rng=random.Random(5), **numbers)
    return replace(ref, commit_retry=policy)


def rival_stream(t: DeltaTableRef, every_attempt: bool):
    """A factory whose stream lets a rival replace hour 2 (same data file) commit mid-write: this write loses."""
    calls = {"n": 0}

    def stream():
        calls["n"] += 1
        yield hour_of(0, 1.0).head(2)
        if every_attempt or calls["n"] == 1:
            rival = threading.Thread(
                target=t.replace_window,
                args=(hour_of(2, 9.0 + calls["n"]),),
                kwargs={"column": "timestamp", "start": at(2), "end": at(3)},
            )
            rival.start()
            rival.join(timeout=60)
        yield hour_of(0, 1.0).tail(2)

    return stream, calls


def test_lost_race_waits_through_the_policy_then_commits(lake: Lake) -> None:
    waits: list[float] = []
    t = recording(one_file_table(lake, "pi_timeseries", 3), waits)
    stream, calls = rival_stream(t, every_attempt=False)
    result = t.replace_window(stream, column="timestamp", start=at(0), end=at(1))
    assert result.attempts == 2 and calls["n"] == 2
    assert len(waits) == 1 and 0.0 <= waits[0] <= COMMIT_RETRY.backoff_base_s
    assert read_back(t.uri).filter(pl.col("value") == 1.0).height == 4


def test_races_lost_every_time_give_up_after_max_attempts(lake: Lake) -> None:
    waits: list[float] = []
    t = recording(one_file_table(lake, "pi_timeseries", 3), waits)
    stream, calls = rival_stream(t, every_attempt=True)
    with pytest.raises(LakeConflictError, match=r"replace_window on .* lost the commit race 3 times"):
        t.replace_window(stream, column="timestamp", start=at(0), end=at(1), max_attempts=3)
    assert calls["n"] == 3
    caps = [min(1.0, 0.1 * 2**n) for n in range(2)]
    assert len(waits) == 2 and all(0.0 <= w <= c for w, c in zip(waits, caps, strict=True))
    assert read_back(t.uri).filter(pl.col("value") == 1.0).height == 0  # nothing of the loser landed


def streamed_rows(minutes: list[int], value: float) -> pl.DataFrame:
    n = len(minutes)
    base = pl.DataFrame(
        {
            "web_id": ["S1"] * n,
            "timestamp": [at(9, m) for m in minutes],
            "ordinal": [0] * n,
            "value": [value] * n,
        },
    ).with_columns(
        *(
            pl.lit(None, dtype=VALUES_SCHEMA[c]).alias(c)
            for c in VALUES_SCHEMA
            if c not in ("web_id", "timestamp", "ordinal", "value")
        ),
        pl.lit(None, pl.Utf8).alias("tag"),
        pl.lit(datetime.now(UTC)).alias("ingested_at"),
        pl.col("timestamp").dt.date().alias("date"),
        pl.lit("stream").alias("source"),
    )
    return base.select(list(STREAMED_SCHEMA)).cast(dict(STREAMED_SCHEMA))


def test_landing_merge_races_use_the_same_policy(lake: Lake) -> None:
    ref = lake.table("pi_timeseries")
    # One data file whose statistics span the batch's minutes: a rewrite of it conflicts with the batch's merge.
    ref.append([streamed_rows([0, 20], 0.0)], partition_by=["date"])
    waits: list[float] = []
    racing = recording(ref, waits, max_retries=2)
    rivals: list[int] = []

    def rival_commits(attempt: int) -> None:
        # Another writer rewrites that file between this batch's snapshot and its merge (the hourly replace does).
        rivals.append(attempt)
        rows = streamed_rows([0, 20, 40 + attempt], float(attempt))
        ref.replace_window([rows], column="timestamp", start=at(9), end=at(10), partition_by=["date"])

    with pytest.raises(LakeConflictError, match=r"streamed batch b1 lost the commit race 3 times"):
        insert_absent(racing, streamed_rows([5, 10], 7.0), label="b1", before_merge=rival_commits)
    assert rivals == [1, 2, 3]
    assert len(waits) == 2 and all(0.0 <= w <= c for w, c in zip(waits, (0.1, 0.2), strict=True))

    # Without a rival the same batch lands on its first attempt, and no wait is taken.
    outcome = insert_absent(racing, streamed_rows([5, 10], 7.0), label="b2")
    assert (outcome.inserted, outcome.attempts) == (2, 1) and len(waits) == 2
