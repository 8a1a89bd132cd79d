"""The catalog comments (lib/lake/descriptions.py) cover every landed column and say what docs/tables.md says."""

from __future__ import annotations

import re

import pytest

from osipi_dagster.lib.lake import SCD_COLUMNS
from osipi_dagster.lib.lake.descriptions import SCD2_COLUMNS, TABLES, TIMESERIES_COLUMNS
from osipi_dagster.lib.landing import tables as landed
from osipi_dagster.lib.piwebapi.schema import ELEMENTS_SCHEMA, POINTS_SCHEMA
from osipi_dagster_tests.emulator import PROJECT_ROOT

LANDED = {
    "pi_timeseries": list(landed.TIMESERIES_SCHEMA),
    "pi_points": [*POINTS_SCHEMA, *SCD_COLUMNS],
    "af_elements": [*ELEMENTS_SCHEMA, *SCD_COLUMNS],
    "af_attributes": [*landed.AF_ATTRIBUTES_SCHEMA, *SCD_COLUMNS],
    "event_frames": list(landed.EVENT_FRAMES_LANDED_SCHEMA),
    "event_frame_attributes": list(landed.EF_ATTRIBUTES_LANDED_SCHEMA),
}


def doc_column_table(heading: str) -> dict[str, str]:
    """{column: meaning} from the first `| Column | Type | Meaning |` table after `heading` in docs/tables.md."""
    text = (PROJECT_ROOT / "docs" / "tables.md").read_text()
    section = text[text.index(heading) :]
    rows: dict[str, str] = {}
    for line in section[section.index("| Column |") :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        names, _type, meaning = (cell.strip() for cell in line.strip("|").split("|", 2))
        for name in re.findall(r"`([^`]+)`", names):
            rows[name] = meaning
    return rows


@pytest.mark.parametrize("table", sorted(LANDED))
def test_every_landed_column_has_a_comment(table: str) -> None:
    assert list(TABLES[table][1]) == LANDED[table]


@pytest.mark.parametrize(
    ("heading", "columns"),
    [("## `pi_timeseries`", TIMESERIES_COLUMNS), ("## Dimension tables with history", SCD2_COLUMNS)],
)
def test_the_doc_says_what_the_code_says(heading: str, columns: dict[str, str]) -> None:
    documented = doc_column_table(heading)
    assert list(documented) == list(columns)
    for name, meaning in documented.items():
        # A row naming several columns (the four status flags) states their shared meaning in the plural.
        assert columns[name].startswith(meaning), name
