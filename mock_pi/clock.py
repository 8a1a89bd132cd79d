"""The emulator's clock: real time, frozen at an instant, or offset to an instant and running, at any rate.

Every time-dependent answer (snapshot, `*`, "no future data", token expiry, channels) reads `now_us()` from here,
so tests can freeze or move time via /admin/clock instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from mock_pi.pitime import format_us, parse_time


def _real_us() -> int:
    return time.time_ns() // 1_000


@dataclass(frozen=True)
class ClockState:
    mode: str  # "real", "frozen" or "offset"
    now_us: int
    rate: float


class Clock:
    """now = anchor_virtual + (real_now - anchor_real) * rate; frozen means rate 0 at the anchor."""

    def __init__(self, spec: str = "real", rate: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._mode = "real"
        self._rate = 1.0
        self._anchor_real = _real_us()
        self._anchor_virtual = self._anchor_real
        self.configure(spec, rate)

    def configure(self, spec: str, rate: float = 1.0) -> None:
        """Apply a CLI-style spec: 'real', 'frozen:<ISO>' or 'offset:<ISO>'."""
        if spec == "real":
            self.set_real(rate)
        elif spec.startswith("frozen:"):
            self.freeze(_parse_instant(spec[len("frozen:") :]))
        elif spec.startswith("offset:"):
            self.offset(_parse_instant(spec[len("offset:") :]), rate)
        else:
            raise ValueError(f"Clock spec must be 'real', 'frozen:<ISO>' or 'offset:<ISO>', got {spec!r}.")

    def now_us(self) -> int:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int:
        if self._mode == "frozen":
            return self._anchor_virtual
        return self._anchor_virtual + round((_real_us() - self._anchor_real) * self._rate)

    def _anchor(self, mode: str, virtual_us: int, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"Clock rate must be > 0, got {rate}.")
        self._mode = mode
        self._rate = rate
        self._anchor_real = _real_us()
        self._anchor_virtual = virtual_us

    def freeze(self, at_us: int | None = None) -> None:
        """Stop time at `at_us` (default: the current emulator time)."""
        with self._lock:
            self._anchor("frozen", self._now_locked() if at_us is None else at_us, self._rate)

    def offset(self, at_us: int, rate: float | None = None) -> None:
        """Jump to `at_us` and let time run from there (at `rate`, default the current rate)."""
        with self._lock:
            self._anchor("offset", at_us, self._rate if rate is None else rate)

    def set_real(self, rate: float = 1.0) -> None:
        """Follow the wall clock again (at `rate`; a rate other than 1 drifts from wall time as intended)."""
        with self._lock:
            self._anchor("real", _real_us(), rate)

    def set_rate(self, rate: float) -> None:
        """Change speed without a jump in emulator time."""
        with self._lock:
            mode = "offset" if self._mode == "real" and rate != 1.0 else self._mode
            self._anchor(mode, self._now_locked(), rate)

    def advance(self, delta_us: int) -> None:
        """Move emulator time forward (or back) by delta_us, keeping the mode; useful with a frozen clock."""
        with self._lock:
            mode = "offset" if self._mode == "real" else self._mode
            self._anchor(mode, self._now_locked() + delta_us, self._rate)

    def state(self) -> ClockState:
        with self._lock:
            return ClockState(self._mode, self._now_locked(), self._rate)

    def describe(self) -> dict[str, object]:
        st = self.state()
        return {"Mode": st.mode, "Now": format_us(st.now_us), "Rate": st.rate}


def _parse_instant(text: str) -> int:
    # An absolute instant: relative expressions make no sense for a clock anchor.
    return parse_time(text, now_us=_real_us())
