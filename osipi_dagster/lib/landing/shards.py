"""Tag shards: a connection's tags split into N shards by a stable hash of the WebID, and the pi_timeseries layout
that lets N shard runs commit to one Delta table at once.

A tag's shard is blake2b(WebID) mod N: the same in every process and release (Python's `hash` is salted per
process), and independent of the other tags, so a tag stays in its shard as tags come and go. Sharded tables
(N > 1) carry a `shard` column and are Delta-partitioned by (date, shard): a shard run's replace predicate names its
shard partition, so the files of concurrent shard runs are disjoint and delta-rs' conflict checker sees no overlap.
N is recorded in the table (property `osipi.tag_shards`); a run with another N stops with the fix in its message.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator, Sequence

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.landing.selection import LandingError
from osipi_dagster.lib.landing.tables import TIMESERIES_TABLE

SHARD_COLUMN = "shard"
SHARDS_PROPERTY = "osipi.tag_shards"
UNSHARDED_PARTITIONS = ("date",)
SHARDED_PARTITIONS = ("date", SHARD_COLUMN)


class ShardLayoutError(LandingError):
    """The table was laid out for another number of shards than the connection's; the message says how to fix it."""


def check_shards(shards: int) -> int:
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ValueError(f"tag_shards={shards!r} is not a positive integer: use 1 (unsharded) or more")
    return shards


def shard_of(web_id: str, shards: int) -> int:
    """The shard (0..shards-1) of a WebID: blake2b of its UTF-8 bytes, mod shards."""
    digest = hashlib.blake2b(web_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % check_shards(shards)


def shard_keys(shards: int) -> list[str]:
    """The shards' partition keys and `shard` column values: "0" .. "N-1"."""
    return [str(i) for i in range(check_shards(shards))]


def parse_shard(key: str, shards: int) -> int:
    """A shard key ("0".."N-1") as its index; a clear error for anything else."""
    if key not in shard_keys(shards):
        raise ValueError(f"shard {key!r} is not one of the {shards} shards ('0'..'{shards - 1}')")
    return int(key)


def shard_series(web_ids: pl.Series, shards: int) -> pl.Series:
    """The `shard` column (string keys) of `web_ids`, hashing each distinct WebID once."""
    distinct = web_ids.unique().to_list()
    mapping = {w: str(shard_of(w, shards)) for w in distinct if w is not None}
    return web_ids.replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias(SHARD_COLUMN)


def tags_of_shard(tags: pl.DataFrame, shard: int, shards: int) -> pl.DataFrame:
    """The rows of `tags` (a web_id column) whose WebID falls in `shard`, order kept."""
    parse_shard(str(shard), shards)
    if shards == 1:
        return tags
    return tags.filter(shard_series(tags["web_id"], shards) == str(shard))


def partition_columns(shards: int) -> list[str]:
    """pi_timeseries' Delta partition columns for `shards`: (date) unsharded, (date, shard) sharded."""
    return list(UNSHARDED_PARTITIONS if check_shards(shards) == 1 else SHARDED_PARTITIONS)


def table_shards(ref: DeltaTableRef) -> int | None:
    """The number of shards a table was laid out for (None: no table yet). Unsharded tables have no `shard`
    partition; a sharded table records N in its properties (a crash between creating it and recording N leaves
    it unrecorded: then 0, "sharded, N unknown")."""
    if not ref.exists():
        return None
    table = ref.delta()
    if SHARD_COLUMN not in table.metadata().partition_columns:
        return 1
    recorded = table.metadata().configuration.get(SHARDS_PROPERTY)
    return int(recorded) if recorded and recorded.isdigit() else 0


def with_shard_column(table: DeltaTable, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the `shard` column of `table`'s layout when the table is sharded (for writers other than the
    shard runs, e.g. the streaming lander), unchanged otherwise."""
    if SHARD_COLUMN not in table.metadata().partition_columns:
        return frame
    recorded = table.metadata().configuration.get(SHARDS_PROPERTY) or ""
    if not recorded.isdigit():
        raise ShardLayoutError(
            f"Delta table {table.table_uri} is sharded but does not record its shard count ({SHARDS_PROPERTY}): "
            "land one hour × shard with the connection's shard runs first (the first one records it)"
        )
    return frame.with_columns(shard_series(frame["web_id"], int(recorded)))


def reshard_command(uri: str, shards: int) -> str:
    return f"python -m osipi_dagster.lib.landing.shards {uri} {shards}"


def check_layout(ref: DeltaTableRef, shards: int) -> None:
    """Before a run writes: the table (if any) is laid out for `shards`, or ShardLayoutError naming the fix."""
    have = table_shards(ref)
    if have is None or have == shards or (have == 0 and shards > 1):
        return
    laid_out = f"tag_shards={have}" if have else "an unrecorded number of shards"
    raise ShardLayoutError(
        f"Delta table {ref.uri} is laid out for {laid_out} (partitioned by {ref.partition_columns()}), but this "
        f"connection has tag_shards={shards} (OSIPI_TAG_SHARDS or the component's tag_shards). A tag's shard "
        f"depends on the number of shards, so its rows would be landed twice or never replaced. Set tag_shards "
        f"back to {have or 'the number the table was landed with'}, or reshard the table once (one commit; "
        f"stop the connection's runs first): {reshard_command(ref.uri, shards)}"
    )


def record_layout(ref: DeltaTableRef, shards: int) -> None:
    """After a sharded write: record N in the table when it is not yet (the first runs that created it). The
    property commit loses a race to any concurrent commit carrying metadata (a racing recorder, or a write that
    merges the schema); it is retried under the table's commit policy until N is recorded."""
    if shards == 1:
        return
    attempts = ref.commit_retry.attempts()
    while table_shards(ref) == 0:  # sharded, N not recorded yet (check_layout refused any other layout)
        try:
            ref.delta().alter.set_table_properties({SHARDS_PROPERTY: str(shards)}, raise_if_not_exists=False)
        except CommitFailedError as exc:
            delay = attempts.next_delay()
            if delay is None:
                raise ShardLayoutError(
                    f"Could not record {SHARDS_PROPERTY}={shards} on {ref.uri} after {attempts.made} attempts: "
                    f"concurrent commits kept winning ({exc}); the next shard run records it"
                ) from exc
            attempts.wait(delay)


def _resharded(ref: DeltaTableRef, shards: int, version: int) -> Iterator[pa.RecordBatch]:
    dataset = ref.delta(version).to_pyarrow_dataset()
    for batch in dataset.to_batches():
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.drop(SHARD_COLUMN, strict=False)
        if shards > 1:
            frame = frame.with_columns(shard_series(frame["web_id"], shards))
        yield from frame.to_arrow().to_batches()


def reshard(ref: DeltaTableRef, shards: int) -> int:
    """Rewrite the whole table for `shards` (shard column and partitioning) in one overwrite commit; returns the
    rows written. Readers keep seeing the old version until it commits; stop the connection's runs first."""
    check_shards(shards)
    version = ref.version()
    if version is None:
        raise ShardLayoutError(f"No Delta table at {ref.uri}: nothing to reshard")
    batches = _resharded(ref, shards, version)
    first = next(batches, None)
    if first is None:
        empty = pl.from_arrow(ref.delta(version).to_pyarrow_table().slice(0, 0))
        assert isinstance(empty, pl.DataFrame)
        empty = empty.drop(SHARD_COLUMN, strict=False)
        if shards > 1:
            empty = empty.with_columns(pl.lit(None, dtype=pl.Utf8).alias(SHARD_COLUMN))
        schema = empty.to_arrow().schema
    else:
        schema = first.schema
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in [first] if first is not None else []:
            rows += batch.num_rows
            yield batch
        for batch in batches:
            rows += batch.num_rows
            yield batch

    reader = pa.RecordBatchReader.from_batches(schema, counted())
    write_deltalake(
        ref.uri,
        reader,
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=partition_columns(shards),
        storage_options=dict(ref.storage_options) or None,
    )
    if shards > 1:
        ref.delta().alter.set_table_properties({SHARDS_PROPERTY: str(shards)}, raise_if_not_exists=False)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=f"Reshard a {TIMESERIES_TABLE} Delta table for N tag shards."
    )
    parser.add_argument("uri", help=f"the {TIMESERIES_TABLE} table's location")
    parser.add_argument("shards", type=int, help="the connection's new tag_shards")
    args = parser.parse_args(argv)
    rows = reshard(DeltaTableRef(args.uri), args.shards)
    print(f"resharded {args.uri} for tag_shards={args.shards}: {rows} rows rewritten in one commit")


if __name__ == "__main__":
    main()
