"""issue 17's shapes table (report.render_shapes): each workload beside its references, ratios and value counts."""

from __future__ import annotations

from bench import report


def fig(scenario: str, wall: float, values: int, cpu: float, note: str = "") -> dict:
    return {
        "scenario": scenario,
        "label": "60 tags × 24 h",
        "latency_ms": 0,
        "command": f"{scenario} command",
        "runs": [{"wall_s": wall, "cpu_s": cpu, "values": values}],
        "extra": {},
        "note": note,
    }


def test_shapes_table_has_ratios_counts_and_every_command() -> None:
    figs = [
        fig("shape", 2.0, 237_924, 1.5),
        fig("tagreader", 5.0, 237_871, 4.0, note="sampled: 20 tags"),
        fig("ceiling", 1.0, 237_924, 0.1),
        fig("naive", 8.0, 237_924, 2.0),
        {**fig("shape", 9.0, 1, 1.0), "label": "other"},  # no references: dashes, not errors
    ]
    lines = report.render_shapes(figs)
    [row] = [line for line in lines if line.startswith("| 60 tags × 24 h |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["60 tags × 24 h", "none", "2.00", "5.00", "1.00", "8.00", "2.50×", "2.00×", "4.00×",
                     "1.50 / 0.10 / 4.00", "237,924", "237,871", "237,924"]  # fmt: skip
    [other] = [line for line in lines if line.startswith("| other |")]
    assert other.count("–") >= 6
    assert "* tagreader, 60 tags × 24 h: sampled: 20 tags." in lines
    for f in figs[:4]:
        assert any(f"`{f['command']}`" in line for line in lines)
    assert report.render_shapes([f for f in figs if f["scenario"] != "shape"]) == []


def test_each_run_is_compared_with_its_own_steps_references() -> None:
    """The backfill and the shapes both measure a window (30,000 × 1 h with 20 ms): each end-to-end figure takes
    the ceiling and naive measured right after it, not the first ones with the same label."""
    backfill = [fig("backfill", 8.0, 10, 6.0), fig("ceiling", 4.0, 10, 0.4), fig("naive", 800.0, 10, 9.0)]
    shapes = [fig("shape", 9.0, 10, 6.5), fig("ceiling", 3.0, 10, 0.5), fig("naive", 900.0, 10, 9.5)]
    figs = [*backfill, fig("memory", 1.0, 10, 1.0), *shapes]
    [row] = [line for line in report.render_shapes(figs) if line.startswith("| 60 tags × 24 h |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:9] == ["9.00", "–", "3.00", "900.00", "–", "3.00×", "100.00×"]
    assert report._references(figs, figs[0]) == {"ceiling": backfill[1], "naive": backfill[2]}
    assert report._references(figs, figs[3]) == {}  # a figure without references of its own
