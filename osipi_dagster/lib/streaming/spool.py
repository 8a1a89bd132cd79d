"""Durable spool between the channel listener and the lake: append-only, fsynced segment files of Arrow IPC records.

Owns the on-disk layout (open/ → ready/ → landed/), crash recovery of a torn tail, and the per-stream coverage
watermarks the listener uses to fill gaps after a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from osipi_dagster.lib.piwebapi.schema import UTC_US, VALUES_SCHEMA

# Every spooled row: the client's value columns, the tag name, where it came from ("channel" push or "gap" read),
# when the listener received it (wall clock) and its lag behind the PI timestamp at receipt (server clock).
SPOOL_SCHEMA = pl.Schema(
    {**VALUES_SCHEMA, "tag": pl.Utf8, "origin": pl.Utf8, "received_at": UTC_US, "lag_us": pl.Int64}
)

# Record framing: magic, payload length, CRC32 of the payload, payload (one Arrow IPC stream). A torn or corrupt
# record at the tail of the open segment (crash mid-write) is detected by length/CRC and cut off at recovery.
MAGIC = b"OSP1"
HEADER = struct.Struct("<4sQI")
SEGMENT_SUFFIX = ".arrows"
OPEN_SUFFIX = ".part"
WATERMARKS_FILE = "watermarks.arrow"
LISTENER_FILE = "listener.json"
LOCK_FILE = "LOCK"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Exact epoch microseconds (float timestamps lose the last microsecond on current dates)."""
    return (moment - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class SpoolError(RuntimeError):
    """A spool directory problem (corrupt sealed segment, second listener, missing segment)."""


@dataclass(frozen=True)
class Segment:
    """A sealed segment: `seq` orders segments; `path` is where it lives now (ready/ or landed/)."""

    name: str
    seq: int
    path: Path
    size: int
    sealed_at: float


def segment_name(seq: int) -> str:
    return f"seg-{seq:012d}{SEGMENT_SUFFIX}"


def segment_seq(name: str) -> int:
    stem = Path(name).name.split(".", 1)[0]
    if not stem.startswith("seg-") or not stem[4:].isdigit():
        raise SpoolError(f"{name!r} is not a spool segment name (expected seg-<12 digits>{SEGMENT_SUFFIX})")
    return int(stem[4:])


def encode_record(frame: pl.DataFrame) -> bytes:
    buf = BytesIO()
    frame.write_ipc_stream(buf, compression="lz4")
    payload = buf.getvalue()
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes, *, source: str, strict: bool) -> tuple[list[pl.DataFrame], int]:
    """Frames of a segment and the byte length of its valid prefix; strict raises on any bad record."""
    frames: list[pl.DataFrame] = []
    pos = 0
    while pos < len(data):
        bad = None
        if len(data) - pos < HEADER.size:
            bad = "truncated record header"
        else:
            magic, length, crc = HEADER.unpack_from(data, pos)
            start, end = pos + HEADER.size, pos + HEADER.size + length
            if magic != MAGIC:
                bad = "bad record magic"
            elif end > len(data):
                bad = "truncated record payload"
            elif zlib.crc32(data[start:end]) != crc:
                bad = "record checksum mismatch"
        if bad is not None:
            if strict:
                raise SpoolError(f"spool segment {source} is corrupt at byte {pos}: {bad}")
            break
        frames.append(pl.read_ipc_stream(BytesIO(data[start:end])))
        pos = end
    return frames, pos


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write-to-temp, fsync, rename, fsync the directory: readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_segment_file(path: Path) -> pl.DataFrame:
    frames, _ = decode_records(path.read_bytes(), source=str(path), strict=True)
    if not frames:
        return pl.DataFrame(schema=SPOOL_SCHEMA)
    return pl.concat([f.select(list(SPOOL_SCHEMA)).cast(dict(SPOOL_SCHEMA)) for f in frames])


class SpoolReader:
    """What the landing side (sensor, micro-batch run) needs: list, read and mark segments. Safe from any process."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory).resolve()
        self.open_dir = self.root / "open"
        self.ready_dir = self.root / "ready"
        self.landed_dir = self.root / "landed"
        for d in (self.open_dir, self.ready_dir, self.landed_dir):
            d.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def _segments(self, directory: Path) -> list[Segment]:
        out = []
        for p in directory.glob(f"seg-*{SEGMENT_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):  # moved to landed/ by a concurrent run
                st = p.stat()
                out.append(Segment(p.name, segment_seq(p.name), p, st.st_size, st.st_mtime))
        return sorted(out, key=lambda s: s.seq)

    def ready(self) -> list[Segment]:
        """Sealed segments not yet landed, oldest first."""
        return self._segments(self.ready_dir)

    def landed(self) -> list[Segment]:
        return self._segments(self.landed_dir)

    def is_landed(self, name: str) -> bool:
        return (self.landed_dir / name).exists()

    def locate(self, name: str) -> Path | None:
        """Where a segment is now (ready/ or landed/), or None if it was pruned or never existed."""
        segment_seq(name)
        for d in (self.ready_dir, self.landed_dir):
            if (d / name).exists():
                return d / name
        return None

    def read(self, name: str) -> pl.DataFrame:
        path = self.locate(name)
        if path is None:
            raise SpoolError(f"spool segment {name} is neither in {self.ready_dir} nor in {self.landed_dir}")
        try:
            return read_segment_file(path)
        except FileNotFoundError:
            # Moved ready/ → landed/ between locate and open by a concurrent run: the bytes are the same.
            return read_segment_file(self.landed_dir / name)

    def mark_landed(self, names: Iterable[str]) -> None:
        """Move segments to landed/ (idempotent: already-landed names are left alone)."""
        moved = False
        for name in names:
            src = self.ready_dir / name
            if src.exists():
                os.replace(src, self.landed_dir / name)
                moved = True
        if moved:
            _fsync_dir(self.ready_dir)
            _fsync_dir(self.landed_dir)

    def prune_landed(self, older_than_s: float, now: float | None = None) -> int:
        """Delete landed segments older than `older_than_s` (kept meanwhile for replays and audits)."""
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = 0
        for seg in self.landed():
            if seg.sealed_at < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    seg.path.unlink()
                    removed += 1
        return removed

    def watermarks(self) -> pl.DataFrame:
        """Durable coverage per stream: every value with timestamp <= covered_until is in the spool (or landed)."""
        path = self.root / WATERMARKS_FILE
        if not path.exists():
            return pl.DataFrame(schema={"web_id": pl.Utf8, "covered_until": UTC_US})
        return pl.read_ipc(path.read_bytes())

    def listener_state(self) -> dict[str, Any]:
        """The listener's last published state (start time, counters), or {} before its first seal."""
        path = self.root / LISTENER_FILE
        return orjson.loads(path.read_bytes()) if path.exists() else {}


class Spool(SpoolReader):
    """The writer side, owned by exactly one listener process (enforced with an exclusive lock file).

    `append` makes a record durable (fsync) before returning; segments are sealed (renamed into ready/) when they
    exceed `max_segment_bytes` or are older than `max_segment_age_s`, which bounds the hand-off latency.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_segment_bytes: int = 8 << 20,
        max_segment_age_s: float = 2.0,
        fsync: bool = True,
    ) -> None:
        super().__init__(directory)
        self.max_segment_bytes = max_segment_bytes
        self.max_segment_age_s = max_segment_age_s
        self.fsync = fsync
        self._lock = threading.Lock()
        self._lock_fh = open(self.root / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the spool's lifetime
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise SpoolError(
                f"another listener holds {self.root / LOCK_FILE}: one listener per spool directory"
            ) from None
        self._covered: dict[str, int] = {w: to_us(ts) for w, ts in self.watermarks().iter_rows()}
        self._fh: Any = None
        self._open_seq: int | None = None
        self._opened_at = 0.0
        self._records = 0
        self._extra_state: dict[str, Any] = {}
        self.recovered_records = self._recover()
        self._next_seq = self._max_seq() + 1

    # -- recovery ------------------------------------------------------------------------------------------------
    def _max_seq(self) -> int:
        seqs = [segment_seq(p.name) for d in (self.ready_dir, self.landed_dir) for p in d.glob("seg-*")]
        seqs += [segment_seq(p.name) for p in self.open_dir.glob(f"seg-*{OPEN_SUFFIX}")]
        return max(seqs, default=0)

    def _recover(self) -> int:
        """Seal what a crashed listener left in open/: keep the valid prefix, drop a torn last record."""
        recovered = 0
        for part in sorted(self.open_dir.glob(f"seg-*{OPEN_SUFFIX}")):
            frames, valid = decode_records(part.read_bytes(), source=str(part), strict=False)
            if not frames:
                part.unlink()
                continue
            with open(part, "r+b") as fh:
                fh.truncate(valid)
                fh.flush()
                os.fsync(fh.fileno())
            for f in frames:
                self._advance_from_rows(f)
            os.replace(part, self.ready_dir / segment_name(segment_seq(part.name)))
            recovered += len(frames)
        _fsync_dir(self.open_dir)
        _fsync_dir(self.ready_dir)
        if recovered:
            self._write_watermarks()
        return recovered

    def _advance_from_rows(self, frame: pl.DataFrame) -> None:
        # A channel message carries each stream's changes complete up to its newest value (in any order), so the
        # newest value received of a stream bounds what was delivered for it; other streams are not advanced.
        if frame.is_empty():
            return
        last = frame.group_by("web_id").agg(pl.col("timestamp").max().dt.epoch("us"))
        for w, us in last.iter_rows():
            if us > self._covered.get(w, -1):
                self._covered[w] = us

    # -- writing -------------------------------------------------------------------------------------------------
    def append(self, frame: pl.DataFrame, *, covered: tuple[Sequence[str], datetime] | None = None) -> None:
        """Durably add rows (SPOOL_SCHEMA); `covered` states that every value of those streams up to that time
        has now been spooled (a channel message or a completed gap read)."""
        with self._lock:
            if not frame.is_empty():
                data = encode_record(frame.select(list(SPOOL_SCHEMA)).cast(dict(SPOOL_SCHEMA)))
                if self._fh is None:
                    self._open_segment()
                self._fh.write(data)
                self._fh.flush()
                if self.fsync:
                    os.fsync(self._fh.fileno())
                self._records += 1
                self._advance_from_rows(frame)
            if covered is not None:
                web_ids, until = covered
                us = to_us(until)
                cov = self._covered
                for w in web_ids:
                    if us > cov.get(w, -1):
                        cov[w] = us
            if self._fh is not None and self._fh.tell() >= self.max_segment_bytes:
                self._seal_locked()

    def _open_segment(self) -> None:
        self._open_seq = self._next_seq
        self._next_seq += 1
        self._fh = open(self.open_dir / f"seg-{self._open_seq:012d}{OPEN_SUFFIX}", "ab")  # noqa: SIM115
        self._opened_at = time.monotonic()
        self._records = 0

    def seal_if_due(self) -> str | None:
        """Seal the open segment if it is older than max_segment_age_s (called periodically by the listener)."""
        with self._lock:
            if self._fh is not None and time.monotonic() - self._opened_at >= self.max_segment_age_s:
                return self._seal_locked()
            return None

    def seal(self) -> str | None:
        """Seal the open segment now (shutdown); also persists watermarks when nothing is open."""
        with self._lock:
            if self._fh is None:
                self._write_watermarks()
                return None
            return self._seal_locked()

    def _seal_locked(self) -> str:
        assert self._fh is not None and self._open_seq is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        name = segment_name(self._open_seq)
        os.replace(self.open_dir / f"seg-{self._open_seq:012d}{OPEN_SUFFIX}", self.ready_dir / name)
        _fsync_dir(self.ready_dir)
        self._fh = None
        self._open_seq = None
        # After the data is sealed: the watermarks never claim values that are not durable.
        self._write_watermarks()
        return name

    def _write_watermarks(self) -> None:
        frame = pl.DataFrame(
            {"web_id": list(self._covered), "covered_until": list(self._covered.values())},
            schema={"web_id": pl.Utf8, "covered_until": pl.Int64},
        ).with_columns(pl.col("covered_until").cast(UTC_US))
        buf = BytesIO()
        frame.write_ipc(buf)
        atomic_write(self.root / WATERMARKS_FILE, buf.getvalue())
        if self._extra_state:
            atomic_write(self.root / LISTENER_FILE, orjson.dumps(self._extra_state))

    def publish_state(self, state: Mapping[str, Any]) -> None:
        """Listener counters written with the next watermark update (read by the landing run for metadata)."""
        with self._lock:
            self._extra_state = dict(state)

    def covered(self) -> dict[str, datetime]:
        """Coverage known to this process (durable or about to be sealed)."""
        with self._lock:
            return {w: from_us(us) for w, us in self._covered.items()}

    def close(self) -> None:
        """Seal what is open and release the directory lock."""
        self.seal()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
