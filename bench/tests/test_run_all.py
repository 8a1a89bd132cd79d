"""The benchmark suite run through `run_all.main`, and its report rendering, checked against mock_pi's own model.

In the default suite: the quick discovery scenario at both latencies (seconds), its JSON, report and docs rewrite.
Marked slow (`pytest -m slow bench/tests`): the whole `make bench BENCH_ARGS=--quick` selection, whose backfill lands
1,000 tags × 1 h through Dagster into Delta twice and must land exactly the archive's value count.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bench import report, run_all, streaming_table
from bench.common import machine
from bench.scenarios import hour_window
from mock_pi.archive import Archive
from mock_pi.catalog import Catalog

US = 1_000_000
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def archive_values(tags: int, start: datetime, end: datetime) -> int:
    """Events in [start, end) over every point of an emulator with `tags` points (seed 42, frozen clock)."""
    catalog = Catalog(42, tags, 2)
    archive = Archive(42, lambda: int(NOW.timestamp()) * US)
    s, e = int(start.timestamp()) * US, int(end.timestamp()) * US
    total = 0
    for i in range(tags):
        ts = np.asarray(archive.recorded(catalog.point_at(i), s, e).ts_us)
        total += int((ts < e).sum())
    return total


def run_quick(only: str, out: Path) -> dict:
    """`run_all.main` as `make bench BENCH_ARGS="--quick --only <only>"` calls it; the JSON it writes is what it returns."""
    results = run_all.main(["--quick", "--only", only, "--out", str(out)])
    assert json.loads(out.read_text())["figures"] == results["figures"]
    return results


def by(results: dict, scenario: str, latency: int) -> dict:
    [fig] = [f for f in results["figures"] if f["scenario"] == scenario and f["latency_ms"] == latency]
    return fig


@pytest.fixture(scope="module")
def discovery(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_quick("discovery", tmp_path_factory.mktemp("bench") / "quick.json")


def assert_discovery_pages_every_point(results: dict) -> None:
    for latency in (0, 20):
        [run] = by(results, "discovery", latency)["runs"]
        assert run["items"] == 5_000
        # data servers + one page of 1,000 points per server and page (2 servers).
        assert run["http_calls"] >= 5
    assert "--faults latency:20ms" in by(results, "discovery", 20)["command"]


def test_quick_discovery_pages_every_point(discovery: dict) -> None:
    assert [f["scenario"] for f in discovery["figures"]] == ["discovery", "discovery"]
    assert discovery["quick"] is True and discovery["machine"]["cores"] >= 1
    assert_discovery_pages_every_point(discovery)


def test_report_renders_every_figure_with_its_command(discovery: dict, tmp_path: Path) -> None:
    section = report.render(discovery, None)
    assert section.startswith(report.BEGIN) and section.endswith(report.END)
    for fig in discovery["figures"]:
        assert fig["command"] in section
    assert "| 5,000 points, paged | 20 ms |" in section and "cores" in section
    assert "![benchmark figures]" not in section  # no plot, no image link
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\nnotes\n")
    report.write_docs(doc, section)
    text = doc.read_text()
    assert "old" not in text and text.count(report.BEGIN) == 1
    assert text.startswith("# Performance\n\nintro") and text.rstrip().endswith("notes")
    # The plot shows backfill series only: without any, nothing is drawn (matplotlib or not).
    assert report.plot(discovery, tmp_path / "bench.png") is False and not (tmp_path / "bench.png").exists()


@pytest.mark.slow
def test_the_quick_run_lands_exactly_the_archive(tmp_path: Path) -> None:
    quick = run_quick("backfill,discovery", tmp_path / "quick.json")
    assert_discovery_pages_every_point(quick)
    start, end = hour_window(1)
    expected = archive_values(1_000, start, end)
    for latency in (0, 20):
        e2e = by(quick, "backfill", latency)
        [run] = e2e["runs"]
        assert run["values"] == run["landed_rows"] == expected
        assert run["tags"] == 1_000
        assert run["files_added"] >= 1
        assert 0 < run["peak_rss_mib"] < 4096
        # Calls seen by the emulator: at least the client's own, never fewer.
        assert run["http_calls"] >= run["client_http_calls"] > 0
        ceiling = by(quick, "ceiling", latency)
        assert ceiling["runs"][0]["values"] == expected
        assert 0 < ceiling["runs"][0]["http_calls"] < run["http_calls"]
        naive = by(quick, "naive", latency)
        assert naive["runs"][0]["sample_tags"] == 40
        assert "extrapolated" in naive["command"]
    section = report.render(quick, "img/bench.png")
    assert "1,000 tags × 1 h" in section and "![benchmark figures](img/bench.png)" in section
    png = tmp_path / "bench.png"
    if importlib.util.find_spec("matplotlib") is None:  # the bench extra (`make bench`) installs it
        assert report.plot(quick, png) is False
    else:
        assert report.plot(quick, png) and png.stat().st_size > 10_000


def test_streaming_figures_side_by_side_with_the_goals() -> None:
    """`make bench` prints today's design, the lander and the lander at 10× the value rate in columns, each goal
    figure marked met (✓) or missed (✗); the docs section shows the same table."""
    modes = [
        {
            "mode": "runs",
            "tags": 10_000,
            "p50": 7.2,
            "p95": 9.5,
            "dagster_cpu": 67.0,
            "landing_runs_per_h": 720,
        },
        {
            "mode": "lander",
            "tags": 10_000,
            "p50": 1.4,
            "p95": 2.1,
            "dagster_cpu": 8.0,
            "landing_runs_per_h": 0,
        },
        {"mode": "lander@10x", "tags": 10_000, "p50": 2.5, "p95": 4.0, "files_net_per_h": 12.0},
    ]
    lines = streaming_table.render(modes)
    assert lines[0].startswith("== issue 18 goals at 10,000 tags")
    head = lines[1]
    assert head.index("today (run per batch)") < head.index("lander") < head.index("lander @ 10x values")
    rows = {line[:34].strip(): line[34:].split() for line in lines[2:]}
    assert rows["latency PI ts → Delta, p50 (s)"] == ["7.20", "✗", "1.40", "✓", "2.50", "✗", "≤", "2"]
    assert rows["latency PI ts → Delta, p95 (s)"] == ["9.50", "✗", "2.10", "✓", "4.00", "✓", "≤", "5"]
    assert rows["Dagster CPU (% of one core)"] == ["67.0", "✗", "8.0", "✓", "–", "≤", "10"]
    assert rows["landing runs per hour"] == ["720", "✗", "0", "✓", "–", "≤", "60"]
    assert rows["stream table: live files +/h"] == ["–", "–", "12", "bounded"]
    assert "values landed per s" not in rows  # no mode has the figure: no row
    results = {
        "started": "2026-12-04 21:00 UTC",
        "command": ".venv/bin/python bench/run_all.py --only streaming",
        "total_s": 900.0,
        "machine": machine(),
        "figures": [],
        "streaming": {"command": "c", "returncode": 0, "modes": modes},
    }
    section = report.render(results, None)
    assert "\n".join(lines) in section
