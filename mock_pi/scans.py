"""Scan classes and compression: which scans of scanned points the archive keeps, as a pure function of (point, slot).

A scanned point's slots (`Point.slot_us`) start on its scan grid, which is aligned to the hour. Three kinds:

* deadband (numeric points with `deadband_frac`): a slot is a block of scans (a minute, or one scan when scans are
  a minute or more apart). The signal is the smooth part of the point's values, linear between block starts; a scan
  is archived when its level `floor(signal / deadband)` differs from the previous scan's, so fast stretches keep
  most scans and flat ones leave gaps. Crossings are solved per block, so the cost follows blocks and events, not
  scans.
* by rate (digital points that do not archive every scan): each scan is archived with probability `archive_rate`.
* every scan (`archive_rate` 1).

Every kind also archives the scan at each COMPMAX_US boundary (00:00, 08:00 and 16:00 UTC); slot 0 holds only the
"Pt Created" event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mock_pi.catalog import COMPMAX_US, Point, splitmix64, unit_float

_U = np.uint64


@dataclass
class ScanPlan:
    """Per slot: -1 for an irregular point's slot, else how many events the scan slot holds; per event of the scan
    slots (in slot order): its offset from the slot start in microseconds."""

    count: np.ndarray
    offset: np.ndarray


def scan_plan(points: Sequence[Point], k0: np.ndarray, n_slots: np.ndarray) -> ScanPlan | None:
    """The plan for slots [k0[i], k0[i] + n_slots[i]) of points[i], laid out as `archive.generate` lays out slots;
    None when no point is scanned."""
    if len(points) == 1 and not points[0].scan_us:
        return None
    group = np.array(
        [0 if not pt.scan_us else 1 if pt.deadband_frac > 0 else 2 for pt in points], dtype=np.int8
    )
    if not group.any():
        return None
    slot_group = np.repeat(group, n_slots)
    count = np.full(len(slot_group), -1, dtype=np.int64)
    blocks = None
    for g in (1, 2):
        j = np.flatnonzero((group == g) & (n_slots > 0))
        if not len(j):
            continue
        pts = [points[i] for i in j.tolist()]
        if g == 1:
            count[slot_group == 1], blocks = _deadband_blocks(pts, k0[j], n_slots[j])
        else:
            count[slot_group == 2] = _by_rate(pts, k0[j], n_slots[j])
    scan_count = np.maximum(count, 0)
    offset = np.zeros(int(scan_count.sum()), dtype=np.int64)
    if blocks is not None and len(blocks[0]):
        # Place the deadband blocks' offsets among all scan events (the other kinds' offsets are 0).
        first = np.cumsum(scan_count) - scan_count
        event_block, local, block_offset = blocks
        offset[first[np.flatnonzero(slot_group == 1)][event_block] + local] = block_offset
    return ScanPlan(count, offset)


def _runs(n: np.ndarray, k0: np.ndarray, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Slot indices of runs of n[i] (+ extra) slots from k0[i], and the run of each."""
    m = n + extra
    run = np.repeat(np.arange(len(n)), m)
    return np.arange(len(run), dtype=np.int64) - np.repeat(np.cumsum(m) - m, m) + k0[run], run


def _by_rate(pts: list[Point], k0: np.ndarray, n: np.ndarray) -> np.ndarray:
    """0/1 per scan: archived with probability archive_rate, and at every compmax boundary."""
    k, run = _runs(n, k0)
    key = np.array([p.key for p in pts], dtype=np.uint64)[run]
    scan = np.array([p.scan_us for p in pts], dtype=np.int64)[run]
    rate = np.array([p.archive_rate for p in pts], dtype=np.float64)[run]
    u = unit_float(splitmix64(k.astype(_U) * _U(0x8CB92BA72F3D8DD7) ^ key))
    return ((u < rate) | (k * scan % COMPMAX_US == 0)).astype(np.int64)


def _deadband_blocks(
    pts: list[Point], k0: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Events per block, and per event: its block, its index among the block's events, its offset."""
    scan_p = np.array([p.scan_us for p in pts], dtype=np.int64)
    width_p = np.array([p.slot_us for p in pts], dtype=np.int64)
    # The signal at every block start of each run and one either side (one evaluation per block).
    knot, krun = _runs(n, k0 - 1, extra=2)
    created = np.array([p.created_us for p in pts], dtype=np.int64)[krun]
    t = (created + knot * width_p[krun]).astype(np.float64)
    period = np.array([p.period_us for p in pts], dtype=np.float64)[krun]
    phase = np.array([p.phase for p in pts], dtype=np.float64)[krun]
    s = smooth(t, period, phase)
    kb, run = _runs(n, k0)
    at = np.arange(len(kb)) + 2 * run  # index of each block's previous knot in s
    s0, s1, s2 = s[at], s[at + 1], s[at + 2]
    scan, width = scan_p[run], width_p[run]
    band = np.array([p.deadband_frac for p in pts], dtype=np.float64)[run]
    per = width // scan  # scans per block
    last = (width - scan) / width  # where the block's last scan sits between its knots
    lprev = np.floor((s0 + (s1 - s0) * last) / band)
    l0 = np.floor(s1 / band)
    lend = np.floor((s1 + (s2 - s1) * last) / band)
    first_kept = (l0 != lprev) | (kb * width % COMPMAX_US == 0)
    steps = np.where(kb == 0, 0, np.abs(lend - l0)).astype(np.int64)
    # Each deadband multiple crossed inside the block archives the first scan past it (several may share one).
    blk = np.repeat(np.arange(len(kb)), steps)
    r = np.arange(len(blk)) - np.repeat(np.cumsum(steps) - steps, steps)
    up = (lend > l0)[blk]
    level = np.where(up, l0[blk] + 1 + r, l0[blk] - r)
    x = (level * band[blk] - s1[blk]) * per[blk] / (s2[blk] - s1[blk])
    i = np.clip(np.where(up, np.ceil(x), np.floor(x) + 1), 1, per[blk] - 1).astype(np.int64)
    new = np.ones(len(i), dtype=bool)
    new[1:] = (i[1:] != i[:-1]) | (blk[1:] != blk[:-1])
    blk, i = blk[new], i[new]
    inner = np.bincount(blk, minlength=len(kb))
    count = first_kept.astype(np.int64) + inner
    # Events in block order: the block's first scan when kept, then its inner crossings.
    first = np.cumsum(count) - count
    offset = np.zeros(int(count.sum()), dtype=np.int64)
    rank = np.arange(len(blk)) - (np.cumsum(inner) - inner)[blk]
    pos = first[blk] + first_kept[blk] + rank
    offset[pos] = i * scan[blk]
    event_block = np.repeat(np.arange(len(kb)), count)
    return count, (event_block, np.arange(len(offset)) - first[event_block], offset)


def smooth(t: np.ndarray, period_us: np.ndarray | float, phase: np.ndarray | float) -> np.ndarray:
    """The noise-free part of archive.numeric_values around its mean, as a fraction of span."""
    return 0.3 * np.sin(2 * np.pi * t / period_us + phase) + 0.08 * np.sin(
        2 * np.pi * t / (period_us * 0.137) + 1.3 * phase
    )
