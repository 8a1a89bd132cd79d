"""Reading landings back from the Delta log, and the checks run on streamed data (no Dagster).

Every lander commit carries its report (landing.REPORT_KEY); `landing_commits` returns those after a version, with
latency measured against the commit's own timestamp. `duplicate_keys` and `coverage_vs_archive` are the checks the
reporting sensor evaluates on what was streamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl
from deltalake import DeltaTable

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.piwebapi.schema import UTC_US
from osipi_dagster.lib.streaming.landing import KEY, REPORT_KEY

EPOCH_MS = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LandingCommit:
    """One lander commit: its version and time, rows inserted (from delta-rs' metrics) and the lander's report."""

    version: int
    committed_at: datetime
    inserted: int
    report: dict[str, Any]

    def _age_s(self, quantiles: dict[str, int] | None, key: str) -> float | None:
        if not quantiles or key not in quantiles:
            return None
        committed_us = (self.committed_at - EPOCH_MS) // timedelta(microseconds=1)
        return round((committed_us - quantiles[key]) / 1e6, 3)

    @property
    def latency_p50_s(self) -> float | None:
        """Median PI timestamp → commit over the batch's channel values (p95 latency = age of the p5 timestamp)."""
        return self._age_s(self.report.get("pi_ts_local_us"), "p50")

    @property
    def latency_p95_s(self) -> float | None:
        return self._age_s(self.report.get("pi_ts_local_us"), "p5")

    @property
    def latency_max_s(self) -> float | None:
        return self._age_s(self.report.get("pi_ts_local_us"), "p0")

    @property
    def spool_to_lake_p50_s(self) -> float | None:
        return self._age_s(self.report.get("received_us"), "p50")

    @property
    def spool_to_lake_p95_s(self) -> float | None:
        return self._age_s(self.report.get("received_us"), "p5")


def _commit(entry: dict[str, Any]) -> LandingCommit | None:
    raw = entry.get(REPORT_KEY)
    if not raw:
        return None
    metrics = entry.get("operationMetrics") or {}
    inserted = metrics.get("num_target_rows_inserted", metrics.get("num_added_rows", 0))
    return LandingCommit(
        version=int(entry["version"]),
        committed_at=EPOCH_MS + timedelta(milliseconds=int(entry["timestamp"])),
        inserted=int(inserted or 0),
        report=orjson.loads(raw),
    )


def open_table(ref: DeltaTableRef) -> DeltaTable | None:
    """The table's latest snapshot, loaded once (None when it does not exist yet)."""
    if not ref.exists():
        return None
    return DeltaTable(ref.uri, storage_options=dict(ref.storage_options) or None)


def landing_commits(
    table: DeltaTable | None, after: int, max_commits: int
) -> tuple[list[LandingCommit], int | None, int]:
    """Lander commits with version > `after`, oldest first: (commits, latest version, versions not read).

    At most the newest `max_commits` versions are read (the Delta log is read newest first); when more are
    pending, the oldest ones are counted in the third value and not returned."""
    if table is None:
        return [], None, 0
    latest = table.version()
    pending = latest - after
    if pending <= 0:
        return [], latest, 0
    entries = table.history(limit=min(pending, max_commits))
    commits = [c for c in (_commit(e) for e in entries if int(e["version"]) > after) if c is not None]
    return sorted(commits, key=lambda c: c.version), latest, max(0, pending - max_commits)


def duplicate_keys(table: DeltaTable, start: datetime, end: datetime) -> tuple[int, pl.DataFrame]:
    """Rows in [start, end] and the keys (web_id, timestamp, ordinal) found more than once there, any source."""
    days = pl.date_range(start.date(), end.date(), eager=True).implode()
    rows = (
        pl.scan_delta(table)
        .filter(
            pl.col("date").is_in(days)
            & (pl.col("timestamp") >= pl.lit(start, dtype=UTC_US))
            & (pl.col("timestamp") <= pl.lit(end, dtype=UTC_US))
        )
        .select(list(KEY))
        .collect()
    )
    dupes = rows.group_by(list(KEY)).len().filter(pl.col("len") > 1)
    return rows.height, dupes


def lake_good_counts(ref: DeltaTableRef, web_ids: list[str], hour: datetime) -> pl.DataFrame:
    """Good values per stream in [hour, hour + 1 h) in the lake, any source (streamed, or recorded after the
    archive replaced the hour): web_id, lake_count, streamed."""
    end = hour + timedelta(hours=1)
    ids = pl.Series(web_ids, dtype=pl.Utf8).implode()
    frame = (
        ref.scan()
        .filter(
            pl.col("date").is_in(pl.date_range(hour.date(), end.date(), eager=True).implode())
            & (pl.col("timestamp") >= pl.lit(hour, dtype=UTC_US))
            & (pl.col("timestamp") < pl.lit(end, dtype=UTC_US))
            & pl.col("web_id").is_in(ids)
        )
        .group_by("web_id")
        .agg(
            pl.col("good").fill_null(False).sum().cast(pl.Int64).alias("lake_count"),
            (pl.col("source") == "stream").sum().cast(pl.Int64).alias("streamed"),
        )
        .collect()
    )
    return frame


def coverage_vs_archive(lake_counts: pl.DataFrame, pi_counts: pl.DataFrame) -> dict[str, Any]:
    """Compare the lake's good values per stream with PI's Count for the same hour (pi_counts: web_id, pi_count).

    Missing = archive values the lake lacks (a gap: fails the check); extra = lake values the archive does not
    hold (streamed snapshots PI's compression dropped: reported, not a failure)."""
    joined = pi_counts.select("web_id", "pi_count").join(lake_counts, on="web_id", how="full", coalesce=True)
    joined = joined.with_columns(
        pl.col("pi_count").fill_null(0), pl.col("lake_count").fill_null(0), pl.col("streamed").fill_null(0)
    )
    short = joined.filter(pl.col("lake_count") < pl.col("pi_count"))
    return {
        "streams": joined.height,
        "pi_values": int(joined["pi_count"].sum()),
        "lake_values": int(joined["lake_count"].sum()),
        "streamed_values": int(joined["streamed"].sum()),
        "missing_values": int((short["pi_count"] - short["lake_count"]).sum()),
        "extra_values": int((joined["lake_count"] - joined["pi_count"]).clip(lower_bound=0).sum()),
        "streams_short": short.height,
        "sample_short": short.sort("web_id").head(5)["web_id"].to_list(),
    }
