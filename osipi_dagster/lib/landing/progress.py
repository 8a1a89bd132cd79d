"""Progress of a long read: pages and rows counted as they stream through, a line logged at most every `every_s`.

Long partitions (hours of 10k tags) otherwise look stuck in the UI; the rate lets an operator estimate the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl


@dataclass
class Progress:
    """Counts pages and rows flowing through a stream and logs a progress line at most every `every_s`."""

    log: Callable[[str], None]
    label: str
    total_pages: int | None = None
    every_s: float = 10.0
    pages: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_log: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.rows / self.elapsed_s

    def restart(self, total_pages: int | None) -> None:
        """Start counting again (a retried stream after a lost commit race re-reads every page)."""
        self.total_pages, self.pages, self.rows = total_pages, 0, 0
        self.started = self._last_log = time.monotonic()

    def track(self, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        for frame in frames:
            self.pages += 1
            self.rows += frame.height
            now = time.monotonic()
            if now - self._last_log >= self.every_s:
                self._last_log = now
                self.log(self.line())
            yield frame

    def line(self) -> str:
        pages = f"{self.pages}/{self.total_pages}" if self.total_pages else str(self.pages)
        return (
            f"{self.label}: pages {pages}, rows {self.rows:,}, {self.rate:,.0f} rows/s, "
            f"elapsed {self.elapsed_s:.1f} s"
        )
