"""Shard assignment: a stable hash of the WebID, the same in every process, balanced, and a tag's shard does not
depend on the other tags."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest

from osipi_dagster.lib.landing.shards import (
    parse_shard,
    partition_columns,
    shard_keys,
    shard_of,
    shard_series,
    tags_of_shard,
)

WEB_IDS = [f"F1DPw9V3dXTWJ0-yDkLLnJcjXQ{i:06d}UElTUlYwMVxTSU5VU09JRA" for i in range(20_000)]
PINNED = ["F1DPw9V3dXTWJ0-yDkLLnJcjXQAQAAAAUElTUlYwMVxTSU5VU09JRA", "A", "tag-ü", ""]


def test_pinned_values_guard_the_hash_against_change() -> None:
    # Changing the hash moves tags between shards of existing tables: these values must never change.
    assert [shard_of(w, 8) for w in PINNED] == [5, 6, 3, 4]
    assert [shard_of(w, 4) for w in PINNED] == [1, 2, 3, 0]
    assert all(shard_of(w, 1) == 0 for w in PINNED)


def test_the_same_in_other_processes_whatever_their_hash_seed() -> None:
    code = (
        "import sys; from osipi_dagster.lib.landing.shards import shard_of; "
        "print(','.join(str(shard_of(w, 7)) for w in sys.stdin.read().split()))"
    )
    here = ",".join(str(shard_of(w, 7)) for w in WEB_IDS[:2000])
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=" ".join(WEB_IDS[:2000]),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        assert out == here


@pytest.mark.parametrize("shards", [2, 4, 8, 16])
def test_balanced(shards: int) -> None:
    counts = pl.Series(shard_series(pl.Series(WEB_IDS), shards)).value_counts()["count"].to_list()
    expected = len(WEB_IDS) / shards
    assert len(counts) == shards
    # Binomial spread is sqrt(n p (1-p)) ≈ 0.7-1.0 % of the mean here; 6 % is far beyond chance for a good hash.
    assert max(abs(c - expected) / expected for c in counts) < 0.06


def test_membership_unchanged_when_other_tags_come_and_go() -> None:
    tags = pl.DataFrame({"web_id": WEB_IDS[:1000], "tag": [f"T{i}" for i in range(1000)]})
    before = {s: set(tags_of_shard(tags, s, 4)["web_id"]) for s in range(4)}
    grown = pl.concat(
        [tags.sample(fraction=0.5, seed=1), pl.DataFrame({"web_id": WEB_IDS[1000:3000], "tag": "X"})]
    )
    after = {s: set(tags_of_shard(grown, s, 4)["web_id"]) for s in range(4)}
    kept = set(grown["web_id"]) & set(tags["web_id"])
    for s in range(4):
        assert after[s] & kept == before[s] & kept
    # Shards partition the tags: each tag in exactly one.
    assert sum(len(a) for a in after.values()) == grown.height
    assert set().union(*after.values()) == set(grown["web_id"])


def test_series_and_scalar_agree_and_keys_are_the_partition_values() -> None:
    ids = pl.Series([*WEB_IDS[:500], None])
    assert shard_series(ids, 5).to_list() == [str(shard_of(w, 5)) for w in WEB_IDS[:500]] + [None]
    assert shard_keys(3) == ["0", "1", "2"]
    assert partition_columns(1) == ["date"] and partition_columns(3) == ["date", "shard"]


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_shard_counts_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="not a positive integer"):
        shard_of("A", bad)  # type: ignore[arg-type]


def test_bad_shard_keys_are_refused() -> None:
    assert parse_shard("3", 4) == 3
    with pytest.raises(ValueError, match=r"shard '4' is not one of the 4 shards \('0'..'3'\)"):
        parse_shard("4", 4)
    with pytest.raises(ValueError, match="not one of"):
        tags_of_shard(pl.DataFrame({"web_id": ["A"]}), 9, 4)
