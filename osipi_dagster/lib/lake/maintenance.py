"""Table maintenance: compaction / z-order, vacuum, and statistics read from the Delta log.

deltalake 1.x returns arro3 tables from get_add_actions; they are converted through the Arrow PyCapsule interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from .errors import LakeError


def optimize(
    table: DeltaTable, *, z_order: Sequence[str] | None = None, target_size: int | None = None
) -> dict[str, Any]:
    if z_order:
        unknown = sorted(set(z_order) - set(table.schema().to_arrow().names))
        if unknown:
            raise LakeError(f"Cannot z-order {table.table_uri} by unknown columns {unknown}")
        metrics = table.optimize.z_order(list(z_order), target_size=target_size)
    else:
        metrics = table.optimize.compact(target_size=target_size)
    return {**metrics, "version": table.version(), "z_order": list(z_order or [])}


def vacuum(
    table: DeltaTable, *, retention_hours: int, enforce_retention: bool, dry_run: bool
) -> dict[str, Any]:
    try:
        deleted = table.vacuum(
            retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=enforce_retention
        )
    except Exception as exc:
        raise LakeError(
            f"Vacuum of {table.table_uri} with retention_hours={retention_hours} failed: {exc}. A retention below "
            "the table's delta.deletedFileRetentionDuration needs enforce_retention=False (and no concurrent readers)"
        ) from exc
    return {
        "files_deleted": len(deleted),
        "paths": sorted(deleted),
        "dry_run": dry_run,
        "retention_hours": retention_hours,
        "version": table.version(),
    }


def table_stats(table: DeltaTable) -> dict[str, Any]:
    # Read arro3 through __arrow_c_stream__ (treating it as a pyarrow object is the pitfall in NOTES §3.3); not by
    # pa.table(), which first asks whether it is a pandas DataFrame and so imports pandas (~0.2 s of CPU a process).
    actions = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    records = actions.column("num_records") if "num_records" in actions.column_names else None
    rows_known = records is not None and records.null_count == 0
    return {
        "version": table.version(),
        "files": actions.num_rows,
        "rows": int(pa.compute.sum(records).as_py() or 0) if rows_known else None,
        "size_bytes": int(pa.compute.sum(actions.column("size_bytes")).as_py() or 0),
        "partition_columns": list(table.metadata().partition_columns),
    }
