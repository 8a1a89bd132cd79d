"""Slowly-changing-dimension (type 2) planning for dimension tables (tags, AF) and point-in-time reads.

plan_scd2 is pure polars: it compares a snapshot with the current rows and returns the merge actions to apply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from .errors import LakeError

VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, ROW_HASH = (
    "valid_from",
    "valid_to",
    "is_current",
    "is_deleted",
    "row_hash",
)
SCD_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, ROW_HASH)
ACTION, AS_OF = "_scd_action", "_scd_as_of"
UTC_US = pl.Datetime("us", "UTC")


def merge_key(column: str) -> str:
    """Source-side copy of a key column; null on insert rows so they never match a target row."""
    return f"_scd_mk_{column}"


@dataclass(frozen=True)
class Scd2Plan:
    actions: pl.DataFrame  # one row per action; empty when the snapshot changes nothing
    inserted: int  # brand-new keys (including keys that come back after a delete)
    changed: int  # keys whose compare columns changed: old version closed, new one inserted
    deleted: int  # current keys missing from the snapshot, closed
    unchanged: int


def row_hashes(frame: pl.DataFrame, compare: Sequence[str]) -> pl.Series:
    """Stable content hash of the compare columns (JSON of the values, blake2b-128), persisted in row_hash.

    polars' own hash is not stable across versions, and the hash is stored in the table, so it must be.
    """
    if frame.height == 0:
        return pl.Series(ROW_HASH, [], dtype=pl.String)
    encoded = frame.select(pl.struct(list(compare)).struct.json_encode()).to_series().to_list()
    return pl.Series(ROW_HASH, [hashlib.blake2b(s.encode(), digest_size=16).hexdigest() for s in encoded])


def validate_snapshot(frame: pl.DataFrame, key: Sequence[str], compare: Sequence[str], table: str) -> None:
    missing = [c for c in (*key, *compare) if c not in frame.columns]
    if missing:
        raise LakeError(f"SCD2 snapshot for {table} lacks columns {missing}; it has {frame.columns}")
    reserved = [c for c in frame.columns if c in SCD_COLUMNS or c.startswith("_scd_")]
    if reserved:
        raise LakeError(
            f"SCD2 snapshot for {table} must not carry SCD columns {reserved}: the lake manages them"
        )
    nulls = [c for c in key if frame[c].null_count()]
    if nulls:
        raise LakeError(f"SCD2 snapshot for {table} has null key values in {nulls}")
    duplicates = frame.select(key).is_duplicated().sum()
    if duplicates:
        raise LakeError(f"SCD2 snapshot for {table} has {duplicates} rows with duplicate keys {list(key)}")


def initial_rows(frame: pl.DataFrame, compare: Sequence[str], as_of: dt.datetime) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(as_of, dtype=UTC_US).alias(VALID_FROM),
        pl.lit(None, dtype=UTC_US).alias(VALID_TO),
        pl.lit(True).alias(IS_CURRENT),
        pl.lit(False).alias(IS_DELETED),
        row_hashes(frame, compare),
    )


def plan_scd2(
    snapshot: pl.DataFrame,
    current: pl.DataFrame,
    *,
    key: Sequence[str],
    compare: Sequence[str],
    as_of: dt.datetime,
    close_missing: bool,
    table: str,
) -> Scd2Plan:
    """current holds the key columns, row_hash and valid_from of the table's is_current rows."""
    key = list(key)
    new = initial_rows(snapshot, compare, as_of)
    joined = new.select([*key, ROW_HASH]).join(
        current.select([*key, pl.col(ROW_HASH).alias("_old_hash"), pl.col(VALID_FROM).alias("_old_from")]),
        on=key,
        how="full",
        coalesce=True,
        nulls_equal=False,
    )
    is_new = pl.col("_old_hash").is_null() & pl.col(ROW_HASH).is_not_null()
    is_changed = pl.col("_old_hash").is_not_null() & pl.col(ROW_HASH).is_not_null()
    is_changed = is_changed & (pl.col("_old_hash") != pl.col(ROW_HASH))
    is_gone = pl.col(ROW_HASH).is_null()
    flags = joined.select(
        *key,
        is_new.alias("new"),
        is_changed.alias("changed"),
        (is_gone & pl.lit(close_missing)).alias("gone"),
        pl.col("_old_from"),
    )
    closing = flags.filter(pl.col("changed") | pl.col("gone"))
    if closing.height and closing["_old_from"].max() >= as_of:  # type: ignore[operator]
        raise LakeError(
            f"SCD2 as_of {as_of.isoformat()} for {table} is not after the current version's valid_from "
            f"({closing['_old_from'].max()}): snapshots must be merged in time order"
        )
    to_insert = new.join(flags.filter(pl.col("new") | pl.col("changed")).select(key), on=key, how="semi")
    inserts = to_insert.with_columns(
        *[pl.lit(None, dtype=snapshot.schema[k]).alias(merge_key(k)) for k in key],
        pl.lit("insert").alias(ACTION),
    )
    closes = closing.select(
        *key,
        *[pl.col(k).alias(merge_key(k)) for k in key],
        pl.when(pl.col("gone")).then(pl.lit("delete")).otherwise(pl.lit("close")).alias(ACTION),
    )
    actions = pl.concat([inserts, closes], how="diagonal_relaxed").with_columns(
        pl.lit(as_of, dtype=UTC_US).alias(AS_OF)
    )
    n_new, n_changed, n_gone = (int(flags[c].sum()) for c in ("new", "changed", "gone"))
    return Scd2Plan(
        actions=actions,
        inserted=n_new,
        changed=n_changed,
        deleted=n_gone,
        unchanged=snapshot.height - n_new - n_changed,
    )


def as_of_filter(ts: dt.datetime) -> pl.Expr:
    """Rows valid at ts: valid_from <= ts < coalesce(valid_to, +inf)."""
    return (pl.col(VALID_FROM) <= ts) & (pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) > ts))
