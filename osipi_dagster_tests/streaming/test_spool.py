"""The durable spool on its own: record framing, sealing, crash recovery of a torn tail, watermarks, the lock.

No server needed; every check reads the files back through a fresh SpoolReader (another process's view).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from osipi_dagster.lib.streaming import SPOOL_SCHEMA, Spool, SpoolError, SpoolReader

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def rows(web_id: str, seconds: list[int], origin: str = "channel") -> pl.DataFrame:
    n = len(seconds)
    return (
        pl.DataFrame(
            {
                "web_id": [web_id] * n,
                "timestamp": [T0 + timedelta(seconds=s) for s in seconds],
                "ordinal": [0] * n,
                "value": [float(s) for s in seconds],
                "origin": [origin] * n,
                "received_at": [T0] * n,
                "lag_us": [0] * n,
            }
        )
        .with_columns(
            *(
                pl.lit(None).alias(c)
                for c in SPOOL_SCHEMA
                if c not in {"web_id", "timestamp", "ordinal", "value", "origin", "received_at", "lag_us"}
            )
        )
        .select(list(SPOOL_SCHEMA))
        .cast(dict(SPOOL_SCHEMA))
    )


def test_append_seal_read_and_mark_landed(tmp_path: Path) -> None:
    with Spool(tmp_path, max_segment_age_s=60) as spool:
        spool.append(rows("A", [1, 2]))
        spool.append(rows("B", [3]), covered=(["A", "B"], T0 + timedelta(seconds=5)))
        first = spool.seal()
        spool.append(rows("A", [6]))
    reader = SpoolReader(tmp_path)
    names = [s.name for s in reader.ready()]
    assert names == [first, "seg-000000000002.arrows"]
    assert reader.read(first).select("web_id", "value").rows() == [("A", 1.0), ("A", 2.0), ("B", 3.0)]
    marks = dict(reader.watermarks().iter_rows())
    # B: the covered claim (5 s); A: its own later value (6 s) beats the claim.
    assert marks == {"A": T0 + timedelta(seconds=6), "B": T0 + timedelta(seconds=5)}
    reader.mark_landed([first])
    reader.mark_landed([first])  # idempotent
    assert [s.name for s in reader.ready()] == ["seg-000000000002.arrows"]
    assert reader.is_landed(first) and reader.read(first).height == 3


def test_size_rotation(tmp_path: Path) -> None:
    with Spool(tmp_path, max_segment_bytes=1, max_segment_age_s=60) as spool:
        for s in range(3):
            spool.append(rows("A", [s]))
        assert len(spool.ready()) == 3


def test_torn_tail_is_recovered_and_sequence_continues(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_segment_age_s=60)
    spool.append(rows("A", [1, 2]))
    spool.append(rows("A", [3]))
    part = next((tmp_path / "open").glob("*.part"))
    # A crash in the middle of the third write: half a record at the tail, and no seal, no watermark file.
    with open(part, "ab") as fh:
        fh.write(b"OSP1\x40\x00\x00\x00\x00\x00\x00\x00garbage")
    spool._lock_fh.close()  # the killed process's lock goes with it
    recovered = Spool(tmp_path, max_segment_age_s=60)
    assert recovered.recovered_records == 2
    assert [s.name for s in recovered.ready()] == ["seg-000000000001.arrows"]
    assert recovered.read("seg-000000000001.arrows")["value"].to_list() == [1.0, 2.0, 3.0]
    assert recovered.covered() == {"A": T0 + timedelta(seconds=3)}
    recovered.append(rows("A", [4]))
    assert recovered.seal() == "seg-000000000002.arrows"
    recovered.close()


def test_one_listener_per_spool_and_corruption_is_named(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        with pytest.raises(SpoolError, match="another listener holds"):
            Spool(tmp_path)
        spool.append(rows("A", [1]))
        name = spool.seal()
    path = tmp_path / "ready" / str(name)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        SpoolError, match=r"seg-000000000001\.arrows is corrupt at byte 0: record checksum mismatch"
    ):
        SpoolReader(tmp_path).read(str(name))
    with pytest.raises(SpoolError, match="neither in"):
        SpoolReader(tmp_path).read("seg-000000000099.arrows")
