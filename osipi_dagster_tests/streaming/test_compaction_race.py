"""The lander's compaction racing the hourly recorded replace (the archive is the truth), both interleavings driven
deterministically with the real functions: the lander's `compact_dates` and the lake's `replace_window` fed by the
recorded landing's `land_values`, as the `pi/pi_timeseries` asset writes it.

(a) compaction opens its snapshot, the replace commits, the compaction commits from the stale snapshot: delta-rs
refuses it (the replace removed files it read); the lander counts the failure and the next pass compacts.
(b) the replace has read the table, a compaction (another process, as the lander is) commits, then the replace
commits: its first attempt is refused and the lake writer retries it on the new version (the factory re-reads).
Either way the table ends as the archive's rows for the hour plus the streamed rows outside it.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from osipi_dagster.lib.lake import DeltaTableRef, Lake, LakeConflictError
from osipi_dagster.lib.lake.table import COMMIT_RETRY
from osipi_dagster.lib.landing.recorded import LandingStats, land_values, owned_rows
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.quality import POINT_COLUMNS, WindowProfile
from osipi_dagster.lib.streaming import SpoolReader
from osipi_dagster.lib.streaming.lander import Lander
from osipi_dagster.lib.streaming.spool import Spool
from osipi_dagster_tests.streaming.helpers import KEY, ROOT
from osipi_dagster_tests.streaming.test_landing import spooled

START = datetime(2024, 5, 1, 8, tzinfo=UTC)
HOUR = START + timedelta(hours=1)  # the hour the recorded partition replaces
END = HOUR + timedelta(hours=1)
DAY = date(2024, 5, 1)
COMPACT = (
    "import sys, datetime\n"
    "from osipi_dagster.lib.lake import DeltaTableRef\n"
    "from osipi_dagster.lib.streaming.compaction import compact_dates\n"
    "done = compact_dates(DeltaTableRef(sys.argv[1]), [datetime.date.fromisoformat(sys.argv[2])], 32 << 20)\n"
    "print(done['files_removed'])\n"
)


@pytest.fixture(scope="module")
def pi(emulator) -> dict[str, pl.DataFrame]:
    """PI's archive for 08:00-10:00 of 6 streams, and their catalogue rows."""
    with PIWebAPIClient(ClientConfig(base_url=emulator.api)) as client:
        points = pl.concat(list(client.iter_points(client.data_servers()[0])))
        points = points.filter(pl.col("point_type") == "Float32").head(6)
        values = client.recorded(points["web_id"].to_list(), START, END)
    return {"points": points, "values": values}


def stream_slices(pi: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
    """What the listener streamed, in four 30-minute landings: in the replaced hour it missed every other value
    and got one value wrong (the archive corrects both)."""
    values = pi["values"].with_row_index("_i")
    in_hour = pl.col("timestamp") >= HOUR
    streamed = values.filter(~in_hour | (pl.col("_i") % 2 == 0)).drop("_i")
    first = streamed.filter(pl.col("timestamp") >= HOUR).head(1)
    streamed = streamed.with_columns(
        pl.when(pl.struct(KEY).is_in(first.select(pl.struct(KEY)).to_series().implode()))
        .then(pl.col("value") + 1000.0)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    edges = [START + timedelta(minutes=30 * i) for i in range(5)]
    return [
        streamed.filter(pl.col("timestamp").is_between(a, b, closed="left"))
        for a, b in itertools.pairwise(edges)
    ]


class HourlyReplace:
    """The recorded partition's write of HOUR: `replace_window` fed by a factory of `land_values` pages, as the
    asset does (a lost commit race re-runs the extraction). `during_write` runs once, on the first attempt, after
    the writer has opened the table and taken the first page (the other writer's commit lands there)."""

    def __init__(self, ref: DeltaTableRef, pi: dict[str, pl.DataFrame]) -> None:
        self.waits: list[float] = []
        self.ref = replace(ref, commit_retry=replace(COMMIT_RETRY, sleep=self.waits.append))
        self.pi = pi
        self.attempts = 0
        self.written: list[pl.DataFrame] = []
        self.during_write: list[str] | None = None  # the compaction subprocess' command, when the race is (b)
        self.compacted: list[str] = []

    def pages(self) -> Iterator[pl.DataFrame]:
        archive = self.pi["values"].filter(pl.col("timestamp") >= HOUR)
        half = archive.height // 2
        yield archive.head(half)
        if self.attempts == 1 and self.during_write is not None:
            out = subprocess.run(self.during_write, cwd=ROOT, capture_output=True, text=True, check=True)
            self.compacted.append(out.stdout.strip())
        yield archive.tail(archive.height - half)

    def extract(self) -> Iterator[pl.DataFrame]:
        self.attempts += 1
        self.written = []
        tags = self.pi["points"].with_columns(pl.col("name").alias("tag")).select(POINT_COLUMNS)
        stats = LandingStats(profile=WindowProfile(tags))
        for frame in land_values(
            self.pages(), tags, start=HOUR, end=END, ingested_at=datetime.now(UTC), stats=stats
        ):
            self.written.append(frame)
            yield frame

    def run(self, data: object = None) -> object:
        scope = owned_rows(self.pi["points"]["web_id"].to_list(), "*")
        return self.ref.replace_window(
            self.extract if data is None else data,
            column="timestamp",
            start=HOUR,
            end=END,
            partition_by=["date"],
            extra_predicate=scope,
        )


def read(ref: DeltaTableRef) -> pl.DataFrame:
    """The table read back with polars' own Delta reader, sorted by key."""
    return pl.read_delta(ref.uri).sort(KEY)


def files_of(ref: DeltaTableRef, day: date) -> int:
    actions = pl.DataFrame(DeltaTable(ref.uri).get_add_actions(flatten=True))
    return actions.filter(pl.col("partition.date") == day).height


def assert_archive_wins(
    table: pl.DataFrame, streamed_before: pl.DataFrame, written: list[pl.DataFrame]
) -> None:
    """Exactly the replace's rows in HOUR plus the streamed rows before it: nothing resurrected, lost or doubled."""
    dupes = table.filter(pl.struct(KEY).is_duplicated())
    assert dupes.height == 0, f"duplicate keys: {dupes.head()}"
    archive = pl.concat(written).sort(KEY)
    outside = streamed_before.filter(pl.col("timestamp") < HOUR).sort(KEY)
    want = pl.concat([outside, archive.select(outside.columns)]).sort(KEY)
    assert table.filter(pl.col("timestamp") >= HOUR)["source"].unique().to_list() == ["recorded"]
    assert table.select(want.columns).equals(want)


def land_stream(tmp_path: Path, pi: dict[str, pl.DataFrame], lander: Lander, spool: Spool) -> pl.DataFrame:
    for part in stream_slices(pi):
        spool.append(spooled(part))
        spool.seal()
        assert lander.land_once() is not None
    return read(lander.lake.table(lander.table))


def streamed_table(tmp_path: Path, pi: dict[str, pl.DataFrame]) -> tuple[DeltaTableRef, pl.DataFrame]:
    """The stream table after the lander (compaction off) landed the streamed slices: its ref and the rows."""
    lake = Lake(str(tmp_path / "lake"))
    with (
        Spool(tmp_path / "spool", max_segment_age_s=3600) as spool,
        Lander(lake, SpoolReader(tmp_path / "spool"), compact_interval_s=0) as lander,
    ):
        return lake.table("pi_timeseries"), land_stream(tmp_path, pi, lander, spool)


def test_replace_commits_between_compaction_snapshot_and_commit(
    tmp_path: Path, pi: dict[str, pl.DataFrame]
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    replace_run = HourlyReplace(lake.table("pi_timeseries"), pi)
    with (
        Spool(tmp_path / "spool", max_segment_age_s=3600) as spool,
        Lander(lake, SpoolReader(tmp_path / "spool"), compact_interval_s=1e-6) as lander,
    ):
        streamed = land_stream(tmp_path, pi, lander, spool)
        assert (
            streamed.filter(pl.col("timestamp") >= HOUR).height
            < pi["values"].filter(pl.col("timestamp") >= HOUR).height
        )
        assert files_of(lander.lake.table(lander.table), DAY) == 4
        results = []
        # (a) The pass opens its snapshot; the hourly replace commits; the pass commits from the stale snapshot.
        lander.before_compact = lambda day: results.append(replace_run.run()) if not results else None
        lander.compact_due()
        assert len(results) == 1 and results[0].attempts == 1  # the replace won without a retry
        assert lander.stats.compaction_errors == 1 and lander.stats.compactions == 0
        ref = lander.lake.table(lander.table)
        # The refused compaction committed nothing: the replace is the newest commit.
        assert DeltaTable(ref.uri).history(1)[0]["operation"] == "WRITE"
        assert_archive_wins(read(ref), streamed, replace_run.written)

        # The next pass compacts the date on the replaced table: still the archive's rows, now in one file.
        lander.compact_due()
        assert lander.stats.compactions == 1 and lander.stats.compaction_errors == 1
        assert files_of(ref, DAY) == 1
        assert DeltaTable(ref.uri).history(1)[0]["operation"] == "OPTIMIZE"
        assert_archive_wins(read(ref), streamed, replace_run.written)
    assert replace_run.attempts == 1 and replace_run.waits == []


def test_compaction_commits_while_the_replace_writes(tmp_path: Path, pi: dict[str, pl.DataFrame]) -> None:
    ref, streamed = streamed_table(tmp_path, pi)
    before = DeltaTable(ref.uri).version()
    replace_run = HourlyReplace(ref, pi)
    # (b) The lander's compaction (its own process) commits after the replace opened the table.
    replace_run.during_write = [sys.executable, "-c", COMPACT, ref.uri, DAY.isoformat()]
    result = replace_run.run()
    assert replace_run.compacted == ["4"]  # the compaction merged the four landed files and committed first
    assert replace_run.attempts == 2 and result.attempts == 2 and len(replace_run.waits) == 1
    ops = {int(h["version"]): h["operation"] for h in DeltaTable(ref.uri).history(2)}
    assert ops == {before + 1: "OPTIMIZE", before + 2: "WRITE"} and result.version == before + 2
    assert_archive_wins(read(ref), streamed, replace_run.written)


def test_single_use_replace_losing_the_race_fails_clearly(
    tmp_path: Path, pi: dict[str, pl.DataFrame]
) -> None:
    """A replace whose input cannot be replayed fails with a clear error and commits nothing (Dagster retries the
    run); the asset passes a factory, which the writer retries itself (above)."""
    ref, streamed = streamed_table(tmp_path, pi)
    replace_run = HourlyReplace(ref, pi)
    replace_run.during_write = [sys.executable, "-c", COMPACT, ref.uri, DAY.isoformat()]
    with pytest.raises(LakeConflictError, match=r"lost a commit race.*single-use iterator"):
        replace_run.run(replace_run.extract())
    assert replace_run.compacted == ["4"]
    assert DeltaTable(ref.uri).history(1)[0]["operation"] == "OPTIMIZE"
    assert read(ref).equals(streamed)  # compacted, rows unchanged, nothing of the failed replace
