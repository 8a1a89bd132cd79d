"""A fixed-size log-spaced histogram of durations in seconds: streaming quantiles (p50, p95) of data age and lateness
in constant memory, whatever the number of values, with exact count, min and max.

Error bound: bins grow by GROWTH (1 %) from LOW_S (1 ms) to HIGH_S (~317 years); a quantile is reported as the
geometric middle of its bin, so it is within 0.5 % (relative) of the exact nearest-rank quantile for values of at
least 1 ms, and within 1 ms below that (values under 1 ms, negative ones included, share one bin reported as 0 s).
Every reported quantile is clamped to the exact [min, max]; the extreme ranks are the exact min and max.
"""

from __future__ import annotations

import math

import numpy as np

LOW_S = 1e-3
HIGH_S = 1e10
GROWTH = 1.01
_LOG_GROWTH = math.log(GROWTH)
# Bin 0: below LOW_S; bins 1..N: [LOW_S·G^(i-1), LOW_S·G^i); bin N+1: HIGH_S and above.
N_BINS = math.ceil(math.log(HIGH_S / LOW_S) / _LOG_GROWTH)


class LogHistogram:
    """Add arrays of seconds with `add`; `quantile(q)` and `summary()` read them back (bounded: N_BINS + 2 counters)."""

    __slots__ = ("count", "counts", "max", "min")

    def __init__(self) -> None:
        self.counts = np.zeros(N_BINS + 2, dtype=np.int64)
        self.count = 0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, seconds: np.ndarray) -> None:
        values = np.asarray(seconds, dtype=np.float64)
        values = values[~np.isnan(values)]
        if values.size == 0:
            return
        idx = np.zeros(values.size, dtype=np.int64)
        above = values >= LOW_S
        idx[above] = np.minimum(
            np.floor(np.log(values[above] / LOW_S) / _LOG_GROWTH).astype(np.int64) + 1, N_BINS + 1
        )
        self.counts += np.bincount(idx, minlength=N_BINS + 2)
        self.count += int(values.size)
        lo, hi = float(values.min()), float(values.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def merge(self, other: LogHistogram) -> None:
        self.counts += other.counts
        self.count += other.count
        for attr, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, theirs if mine is None else mine if theirs is None else pick(mine, theirs))

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (0 <= q <= 1) within the error bound above; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} is outside [0, 1]")
        if self.count == 0 or self.min is None or self.max is None:
            return None
        rank = round(q * (self.count - 1))  # 0-based rank of the wanted value, as polars' "nearest"
        if rank == 0:
            return self.min
        if rank == self.count - 1:
            return self.max
        i = int(np.searchsorted(np.cumsum(self.counts), rank + 1))
        if i == 0:
            value = 0.0
        elif i == N_BINS + 1:
            value = self.max
        else:
            value = LOW_S * GROWTH ** (i - 0.5)
        return min(max(value, self.min), self.max)

    def summary(self, digits: int = 3) -> dict[str, float]:
        """{"p50", "p95", "max"} in seconds, rounded; empty when nothing was added."""
        if self.count == 0 or self.max is None:
            return {}
        return {
            "p50": round(self.quantile(0.5) or 0.0, digits),
            "p95": round(self.quantile(0.95) or 0.0, digits),
            "max": round(self.max, digits),
        }
