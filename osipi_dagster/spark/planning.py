"""Input partitions of the `osipi` source: tag shards × time slices, sized in values, balanced under a cap.

Pure functions (no pyspark, no HTTP). A `Slice` is one unit of PI work: some streams over one half-open window,
expected to return about `weight` values. Slices are sized to one PI call's worth (MaxReturnedItemsPerCall, 150,000
by default) from the tags' densities; `balance` then deals them onto at most `max_partitions` partitions (largest
first onto the least loaded), which bounds how many executors read PI at once. Estimates only steer the split: the
client reads every slice completely whatever its size (continuations, splits on the server's 400).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

# PI's Count summary counts good values only, and densities vary within a window: the client's own headroom.
HEADROOM = 1.2
# At most this many streams per slice, even when they are all quiet: ~12 stream-set calls at the client's URL limit,
# so a slice of idle tags is still a short task.
MAX_TAGS_PER_SLICE = 1000


@dataclass(frozen=True)
class Slice:
    """Streams `web_ids` over [start, end), about `weight` values."""

    web_ids: tuple[str, ...]
    start: datetime
    end: datetime
    weight: float


def recorded_slices(
    web_ids: Sequence[str],
    counts: Mapping[str, int],
    start: datetime,
    end: datetime,
    budget: int,
    max_tags: int = MAX_TAGS_PER_SLICE,
) -> list[Slice]:
    """Slices of about `budget` values from each tag's count over [start, end).

    A tag expected above the budget alone gets its own time slices (n equal parts, each under the budget); the
    others are packed in order into shards whose expected sum stays under the budget. Every tag weighs at least 1
    (a count of 0 may hide bad values, which Count ignores).
    """
    slices: list[Slice] = []
    shard: list[str] = []
    load = 0.0
    for w in web_ids:
        weight = max(1.0, counts.get(w, 0) * HEADROOM)
        if weight > budget:
            n = math.ceil(weight / budget)
            step = (end - start) / n
            for i in range(n):
                a = start + step * i
                b = end if i == n - 1 else start + step * (i + 1)
                slices.append(Slice((w,), a, b, weight / n))
            continue
        if shard and (load + weight > budget or len(shard) >= max_tags):
            slices.append(Slice(tuple(shard), start, end, load))
            shard, load = [], 0.0
        shard.append(w)
        load += weight
    if shard:
        slices.append(Slice(tuple(shard), start, end, load))
    return slices


def even_slices(
    web_ids: Sequence[str], start: datetime, end: datetime, per_tag: float, budget: int, parts: int = 1
) -> list[Slice]:
    """Shards of tags whose values are known in advance (`per_tag` each: interpolated, summary), or, with
    parts > 1, at least `parts` shards of equal tag counts (sizing without a Count call)."""
    if not web_ids:
        return []
    size = max(1, min(MAX_TAGS_PER_SLICE, int(budget // max(per_tag, 1.0))))
    size = min(size, math.ceil(len(web_ids) / max(1, parts)))
    return [
        Slice(tuple(web_ids[i : i + size]), start, end, per_tag * len(web_ids[i : i + size]))
        for i in range(0, len(web_ids), size)
    ]


class Weighted(Protocol):
    @property
    def weight(self) -> float: ...


W = TypeVar("W", bound=Weighted)


def balance(slices: Sequence[W], max_partitions: int) -> list[list[W]]:
    """Deal slices (anything with a weight) onto at most `max_partitions` partitions: heaviest first onto the least
    loaded (LPT), so the partitions' expected values are close; deterministic, slices keep their relative order in
    a partition."""
    if max_partitions < 1:
        raise ValueError("max_partitions must be at least 1")
    if len(slices) <= max_partitions:
        return [[s] for s in slices]
    heap = [(0.0, k) for k in range(max_partitions)]
    members: list[list[int]] = [[] for _ in range(max_partitions)]
    for index in sorted(range(len(slices)), key=lambda i: (-slices[i].weight, i)):
        load, k = heapq.heappop(heap)
        members[k].append(index)
        heapq.heappush(heap, (load + slices[index].weight, k))
    return [[slices[i] for i in sorted(m)] for m in members if m]
