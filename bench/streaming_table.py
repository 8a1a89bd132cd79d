"""The streaming benchmark's figures side by side (today's run per batch, the lander, the lander at 10× the value
rate) with issue 18's goals; used by bench_streaming.py, run_all.py and the docs report. No heavy imports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# figure key → (label, format, goal text, goal test); a cell that misses its goal is marked ✗, one meeting it ✓.
ROWS: tuple[tuple[str, str, str, str, Callable[[float], bool] | None], ...] = (
    ("p50", "latency PI ts → Delta, p50 (s)", ".2f", "≤ 2", lambda v: v <= 2),
    ("p95", "latency PI ts → Delta, p95 (s)", ".2f", "≤ 5", lambda v: v <= 5),
    ("values_per_s", "values landed per s", ",.0f", "", None),
    ("dagster_cpu", "Dagster CPU (% of one core)", ".1f", "≤ 10", lambda v: v <= 10),
    ("landing_runs_per_h", "landing runs per hour", ",.0f", "≤ 60", lambda v: v <= 60),
    ("reported_per_h", "landings reported per hour", ",.0f", "", None),
    ("files_written_per_h", "stream table: files written /h", ",.0f", "", None),
    ("files_net_per_h", "stream table: live files +/h", ",.0f", "bounded", None),
    ("live_files_max", "stream table: live files, peak", ",.0f", "", None),
    ("live_files_end", "stream table: live files, end", ",.0f", "", None),
    ("mib_per_h", "stream table: live MiB +/h", ",.1f", "", None),
    ("compactions", "compactions in the window", ",.0f", "", None),
    ("listener_cpu", "listener CPU (% of one core)", ".1f", "", None),
    ("lander_cpu", "lander CPU (% of one core)", ".1f", "", None),
    ("load_before", "load average before (1 min)", ".2f", "", None),
    ("load_after", "load average after (1 min)", ".2f", "", None),
)
NAMES = {"runs": "today (run per batch)", "lander": "lander", "direct": "direct (no Dagster)"}


def heading(mode: str) -> str:
    kind, _, rate = mode.partition("@")
    return NAMES.get(kind, kind) + (f" @ {rate} values" if rate else "")


def cell(value: Any, fmt: str, test: Callable[[float], bool] | None) -> str:
    if value is None:
        return "–"
    mark = "" if test is None else (" ✓" if test(float(value)) else " ✗")
    return format(value, fmt) + mark


def render(results: list[dict[str, Any]]) -> list[str]:
    """The table as text lines; the tag count from the first mode."""
    heads = [heading(r["mode"]) for r in results]
    width = max(24, *(len(h) + 2 for h in heads))
    lines = [f"== issue 18 goals at {results[0]['tags']:,} tags (✓ meets the goal, ✗ misses it)"]
    lines.append(f"{'figure':<34}" + "".join(f"{h:>{width}}" for h in heads) + f"{'goal':>10}")
    for key, label, fmt, goal, test in ROWS:
        if all(r.get(key) is None for r in results):
            continue
        row = "".join(f"{cell(r.get(key), fmt, test):>{width}}" for r in results)
        lines.append(f"{label:<34}{row}{goal:>10}")
    return lines
