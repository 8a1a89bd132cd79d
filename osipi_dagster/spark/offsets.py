"""Per-tag offsets of the `osipi` stream and the reads between two of them (no pyspark).

An offset holds one frontier per tag (µs since the epoch, UTC): every recorded value of that tag stamped at or before
its frontier has been emitted, none after it. In the checkpoint it is `{"v": 1, "tags": n, "until": <latest frontier,
ISO>, "frontiers": <base64 of zlib-compressed JSON [[web_id, frontier_us], ...]>}`: 10,000 tags take ~220 KB instead
of ~860 KB of JSON, which matters because Spark keeps offsets in every progress report it holds. A micro-batch from offset S to offset E reads,
per tag, the values with S[tag] < timestamp <= E[tag], so consecutive batches never share a value and leave no gap.

Where a frontier moves to: the tag's own last archived value (PI's end-of-stream value), capped at the server's
now. A PI interface that buffers through an outage delivers a tag's values late but in order, after that tag's last
value: they are read when they arrive, whatever the server clock says meanwhile. Only values inserted *behind* a
tag's frontier (a manual backfill, an edit) are not streamed; the batch read of that window is the truth for them,
as the hourly recorded asset is in the Dagster path (docs/databricks.md).
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.spark.planning import MAX_TAGS_PER_SLICE
from osipi_dagster.spark.tables import SOURCE_STREAM, TIMESERIES_SCHEMA
from osipi_dagster.spark.work import land

VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def offset(frontiers: Mapping[str, int]) -> dict[str, Any]:
    """The offset Spark journals (deterministic: equal frontiers give an equal offset, which is how Spark tells
    that no new data arrived)."""
    items = sorted(frontiers.items())
    packed = zlib.compress(json.dumps(items, separators=(",", ":")).encode(), 6)
    until = from_us(max(frontiers.values())).isoformat() if frontiers else None
    return {"v": VERSION, "tags": len(items), "until": until, "frontiers": base64.b64encode(packed).decode()}


def frontiers(value: Mapping[str, Any] | None) -> dict[str, int]:
    """The per-tag frontiers of an offset (Spark hands offsets back as parsed JSON)."""
    if not value:
        return {}
    if value.get("v") != VERSION:
        raise ValueError(
            f"osipi: offset version {value.get('v')!r} is not {VERSION}: the checkpoint is from another release"
        )
    items = json.loads(zlib.decompress(base64.b64decode(value["frontiers"])))
    return {str(w): int(us) for w, us in items}


def advance(
    start: Mapping[str, int],
    candidates: Mapping[str, int],
    now_us: int,
    tags: list[str],
    target: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The next offset: each tag moves to its candidate (never back), at most to `target` (Trigger.AvailableNow);
    a tag new to the stream starts at the server's now (its history is the batch source's job); tags no longer
    selected keep their frontier, so selecting them again does not replay them."""
    out = dict(start)
    for w in tags:
        if w not in out:
            out[w] = now_us if target is None else min(now_us, target.get(w, now_us))
            continue
        new = max(out[w], candidates.get(w, out[w]))
        if target is not None and w in target:
            new = max(out[w], min(new, target[w]))
        out[w] = new
    return out


def candidates(client: PIWebAPIClient, web_ids: list[str]) -> tuple[dict[str, int], int]:
    """Each tag's last archived timestamp capped at the server's now (µs), and that now; tags without any value
    (or unknown to the server, which the client skips and reports) have no candidate."""
    now_us = to_us(client.server_time())
    ends = (
        client.end_values(web_ids)
        if web_ids
        else pl.DataFrame(schema={"web_id": pl.Utf8, "timestamp": pl.Int64})
    )
    out: dict[str, int] = {}
    for w, ts in ends.select("web_id", pl.col("timestamp").dt.epoch("us")).iter_rows():
        if ts is not None:
            out[w] = min(int(ts), now_us)
    return out, now_us


@dataclass(frozen=True)
class StreamGroup:
    """Tags read with one recorded call over [min lower, max upper], each then kept to (lower, upper]."""

    bounds: tuple[tuple[str, int, int], ...]  # (web_id, lower_us exclusive, upper_us inclusive)

    @property
    def weight(self) -> float:
        return float(sum(hi - lo for _, lo, hi in self.bounds)) / 1e6


def stream_groups(start: Mapping[str, int], end: Mapping[str, int]) -> list[StreamGroup]:
    """The reads of one micro-batch: tags whose frontier moved, grouped by how far back their read starts (powers
    of two of the span), so a quiet tag last seen hours ago does not make busy tags re-read hours: each tag reads at
    most twice its own span."""
    moved = [(w, start[w], end[w]) for w in sorted(end) if w in start and end[w] > start[w]]
    if not moved:
        return []
    top = max(hi for _, _, hi in moved)
    buckets: dict[int, list[tuple[str, int, int]]] = {}
    for w, lo, hi in moved:
        span_s = max(1.0, (top - lo) / 1e6)
        buckets.setdefault(int(math.log2(span_s)), []).append((w, lo, hi))
    groups = []
    for k in sorted(buckets):
        items = buckets[k]
        for i in range(0, len(items), MAX_TAGS_PER_SLICE):
            groups.append(StreamGroup(tuple(items[i : i + MAX_TAGS_PER_SLICE])))
    return groups


@dataclass(frozen=True)
class StreamWork:
    """One input partition of a micro-batch: some groups, the tags' names and the batch's ingestion time."""

    groups: tuple[StreamGroup, ...]
    tags: dict[str, str] = field(default_factory=dict)
    ingested_at: datetime | None = None
    table: str = "recorded"

    @property
    def weight(self) -> float:
        return sum(g.weight for g in self.groups)

    def frames(self, client: PIWebAPIClient) -> Any:
        ingested_at = self.ingested_at or datetime.now(UTC)
        for g in self.groups:
            bounds = pl.DataFrame(
                list(g.bounds), schema={"web_id": pl.Utf8, "lo": pl.Int64, "hi": pl.Int64}, orient="row"
            )
            ids = bounds["web_id"].to_list()
            lo, hi = from_us(int(bounds["lo"].min())), from_us(int(bounds["hi"].max()))  # type: ignore[arg-type]
            for page in client.iter_recorded(ids, lo, hi, include_end=True):
                us = pl.col("timestamp").dt.epoch("us")
                kept = page.join(bounds, on="web_id", how="inner", maintain_order="left").filter(
                    (us > pl.col("lo")) & (us <= pl.col("hi"))
                )
                if kept.height:
                    yield land(kept.drop("lo", "hi"), self.tags, ingested_at, SOURCE_STREAM).select(
                        list(TIMESERIES_SCHEMA)
                    )
