"""The late-data audit: landed windows compared with what PI answers now, and the partitions to re-materialize.

Time series: per (tag, hour) counts and totals against PI's hourly summaries, plus row checksums of the newest hours
against a fresh read; with tag shards, a repair is one hour × the shard of the tags that differ. Event frames: frames
stored in progress that PI has closed or deleted since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.recorded import recorded_scan
from osipi_dagster.lib.landing.shards import shard_series
from osipi_dagster.lib.landing.tables import EVENT_FRAMES_TABLE, TIMESERIES_TABLE
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.summaries import HALF_OPEN_BASIS
from osipi_dagster.lib.quality import (
    NUMERIC_POINT_TYPES,
    checksum_mismatches,
    count_mismatches,
    hour_stats,
    merge_hour_stats,
    summary_per_hour,
)

HOUR_FORMAT = "%Y-%m-%d-%H:%M"
# Tags or frames named in a repair's metadata (the counts are always exact).
SAMPLE = 20
TIMESERIES, EVENT_FRAMES = "timeseries", "event_frames"


@dataclass
class Repair:
    """One partition to re-materialize and why."""

    kind: str  # TIMESERIES | EVENT_FRAMES
    partition: str
    reason: str
    metadata: dict[str, Any]


def hour_key(hour: datetime) -> str:
    """The hourly partition key of `hour`."""
    return hour.strftime(HOUR_FORMAT)


def partition_key(hour: datetime, shard: str | None = None) -> str:
    """pi_timeseries' partition key: the hour, or "<hour>|<shard>" for a sharded connection (hour × shard)."""
    return hour_key(hour) if shard is None else f"{hour_key(hour)}|{shard}"


def split_partition(key: str) -> tuple[datetime, str | None]:
    """The hour (UTC) and shard (None unsharded) of a pi_timeseries partition key."""
    hour, _, shard = key.partition("|")
    return datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC), shard or None


def pi_hour_summaries(
    client: PIWebAPIClient, tags: pl.DataFrame, start: datetime, end: datetime
) -> pl.DataFrame:
    """PI's Count (and Total, numeric tags only: PI refuses Total on others) per tag and hour over [start, end).

    Each hour is asked half-open, [hour, hour + 1h), as the lake's hours are: HALF_OPEN_BASIS, not EventWeighted,
    which with a single hour (one interval) would also count a value stamped exactly at the range end.
    """
    numeric = tags.filter(pl.col("point_type").is_in(NUMERIC_POINT_TYPES))["web_id"].to_list()
    other = tags.filter(~pl.col("point_type").is_in(NUMERIC_POINT_TYPES))["web_id"].to_list()
    parts = []
    for ids, types in ((numeric, ("Count", "Total")), (other, ("Count",))):
        if ids:
            s = client.summary(ids, start, end, types, "1h", calculation_basis=HALF_OPEN_BASIS)
            parts.append(summary_per_hour(s, start))
    return pl.concat(parts) if parts else summary_per_hour(pl.DataFrame(), start)


def pi_hour_checksums(client: PIWebAPIClient, ids: list[str], start: datetime, end: datetime) -> pl.DataFrame:
    """Checksums of a fresh recorded read, aggregated page by page (bounded memory)."""
    return merge_hour_stats(
        [hour_stats(page) for page in client.iter_recorded(ids, start, end) if page.height]
    )


def audit_timeseries(
    client: PIWebAPIClient,
    lake: Lake,
    tags: pl.DataFrame,
    hours: list[datetime],
    checksum_hours: set[datetime],
) -> pl.DataFrame:
    """Mismatching (web_id, hour) pairs over `hours` (audited by counts/totals) and `checksum_hours` (also by
    checksum). Columns: web_id, hour, reason, lake, pi (counts, or rows for checksums)."""
    start, end = min(hours), max(hours) + timedelta(hours=1)
    ids = tags["web_id"].to_list()
    wanted = pl.DataFrame({"hour": hours}, schema={"hour": pl.Datetime("us", "UTC")})
    in_tags = pl.col("web_id").is_in(pl.Series(ids, dtype=pl.Utf8).implode())
    lake_stats = hour_stats(recorded_scan(lake.table(TIMESERIES_TABLE), start, end).filter(in_tags))
    lake_stats = lake_stats.join(wanted, on="hour", how="semi")
    pi_sum = pi_hour_summaries(client, tags, start, end).join(wanted, on="hour", how="semi")
    found = [
        count_mismatches(lake_stats, pi_sum).select(
            "web_id", "hour", "reason", pl.col("lake_count").alias("lake"), pl.col("pi_count").alias("pi")
        )
    ]
    if checksum_hours:
        cs_start, cs_end = min(checksum_hours), max(checksum_hours) + timedelta(hours=1)
        cs_wanted = pl.DataFrame({"hour": sorted(checksum_hours)}, schema={"hour": pl.Datetime("us", "UTC")})
        pi_cs = pi_hour_checksums(client, ids, cs_start, cs_end).join(cs_wanted, on="hour", how="semi")
        lake_cs = lake_stats.join(cs_wanted, on="hour", how="semi")
        found.append(
            checksum_mismatches(lake_cs, pi_cs).select(
                "web_id", "hour", "reason", pl.col("lake_rows").alias("lake"), pl.col("pi_rows").alias("pi")
            )
        )
    return pl.concat(found).sort("hour", "web_id", "reason")


def timeseries_repairs(mismatches: pl.DataFrame, names: dict[str, str], shards: int = 1) -> list[Repair]:
    """One repair per hour with mismatches (per hour × shard of the differing tags with tag_shards > 1), naming
    its reasons and (a sample of) its tags."""
    repairs = []
    if shards > 1:
        mismatches = mismatches.with_columns(shard_series(mismatches["web_id"], shards))
    by = ["hour", "shard"] if shards > 1 else ["hour"]
    for key, rows in mismatches.partition_by(by, as_dict=True, maintain_order=True).items():
        hour, shard = key[0], (str(key[1]) if shards > 1 else None)
        web_ids = rows["web_id"].unique(maintain_order=True).to_list()
        reasons = sorted(set(rows["reason"].to_list()))
        counts = rows.filter(pl.col("reason") == "count")
        repairs.append(
            Repair(
                TIMESERIES,
                partition_key(hour, shard),  # type: ignore[arg-type]
                ",".join(reasons),
                {
                    "late_data_reasons": ", ".join(reasons),
                    "tags_differing": len(web_ids),
                    "tags": [names.get(w, w) for w in web_ids[:SAMPLE]],
                    "pi_good_count": int(counts["pi"].sum()),
                    "lake_good_count": int(counts["lake"].sum()),
                },
            )
        )
    return repairs


def event_frame_repairs(client: PIWebAPIClient, lake: Lake, watch: bool, skip: set[str]) -> list[Repair]:
    """Days whose frames are in progress in the lake but closed (or gone) in PI now.

    Every in-progress frame in the lake is looked up, whatever its age: a batch, a campaign or a downtime frame can
    stay open for weeks, and an age limit would freeze it as "in progress" in the lake forever. One POST /batch for
    all of them (the client splits it only at PI's batch size limit).
    """
    ref = lake.table(EVENT_FRAMES_TABLE)
    if not watch or not ref.exists():
        return []
    open_frames = ref.scan().filter(pl.col("in_progress")).select("web_id", "name", "date").collect()
    open_frames = open_frames.filter(~pl.col("date").cast(pl.Utf8).is_in(list(skip)))
    if open_frames.height == 0:
        return []
    urls = {w: client.url(f"eventframes/{w}") for w in open_frames["web_id"].to_list()}
    contents, errors = client.batch_get(urls, raise_errors=False)
    status = {}
    for w in urls:
        if w in errors:
            # A frame that no longer exists changed as much as one that closed; other errors are not evidence.
            status[w] = "deleted" if errors[w].status == 404 else None
        else:
            end = str((contents.get(w) or {}).get("EndTime") or "")
            status[w] = "closed" if end and not end.startswith("9999") else None
    changed = open_frames.with_columns(
        pl.col("web_id").replace_strict(status, default=None, return_dtype=pl.Utf8).alias("change")
    ).filter(pl.col("change").is_not_null())
    repairs = []
    for (day,), rows in changed.partition_by("date", as_dict=True, maintain_order=True).items():
        repairs.append(
            Repair(
                EVENT_FRAMES,
                day.isoformat(),  # type: ignore[attr-defined]
                "event_frames_closed",
                {
                    "late_data_reasons": "in-progress event frames closed in PI",
                    "frames_closed": int((rows["change"] == "closed").sum()),
                    "frames_deleted": int((rows["change"] == "deleted").sum()),
                    "frames": rows["name"].head(SAMPLE).to_list(),
                },
            )
        )
    return repairs
