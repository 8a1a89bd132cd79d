"""Loaded by every Python process of a test's Dagster daemon (PYTHONPATH): SIGKILLs a run's process inside its
pi_timeseries commit, once per target, when OSIPI_TEST_KILL_AT asks for it.

OSIPI_TEST_KILL_AT = "<marker dir>;<hour>|<shard>|<point>;..." with hour "2024-05-01T09", shard "0".."N-1" ("-"
unsharded) and point "in-write" (the writer has taken the first batch, no Delta log entry yet) or "after-commit"
(the commit is in the log, the run has not reported it). A marker file per target makes the kill happen once, so
the run's retry lands.
"""

from __future__ import annotations

import os


def _install(spec: str) -> None:
    import signal
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.compute as pc

    import osipi_dagster.lib.lake.table as table

    marker_dir, *targets = spec.split(";")
    wanted = {tuple(t.split("|")[:2]): t.split("|")[2] for t in targets}
    real = table.write_deltalake

    def cell_of(batch: pa.RecordBatch) -> tuple[str, str] | None:
        if "timestamp" not in batch.schema.names or batch.num_rows == 0:
            return None
        hour = pc.min(batch.column("timestamp")).as_py().strftime("%Y-%m-%dT%H")
        shard = str(batch.column("shard")[0].as_py()) if "shard" in batch.schema.names else "-"
        return hour, shard

    def die_once(cell: tuple[str, str] | None, point: str) -> None:
        if cell is None or wanted.get(cell) != point:
            return
        try:
            (Path(marker_dir) / f"{cell[0]}_{cell[1]}_{point}").touch(exist_ok=False)
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    def write_deltalake(uri, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not str(uri).rstrip("/").endswith("pi_timeseries") or not isinstance(data, pa.RecordBatchReader):
            return real(uri, data, *args, **kwargs)
        seen: dict[str, tuple[str, str] | None] = {}

        def batches():  # type: ignore[no-untyped-def]
            for batch in data:
                if "cell" not in seen:
                    seen["cell"] = cell_of(batch)
                    yield batch
                    die_once(seen["cell"], "in-write")
                    continue
                yield batch

        result = real(uri, pa.RecordBatchReader.from_batches(data.schema, batches()), *args, **kwargs)
        die_once(seen.get("cell"), "after-commit")
        return result

    table.write_deltalake = write_deltalake


if os.environ.get("OSIPI_TEST_KILL_AT"):
    _install(os.environ["OSIPI_TEST_KILL_AT"])
