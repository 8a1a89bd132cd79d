"""docs/connections.md's YAML reference is generated from the PIConnection schema and names every contract field."""

from __future__ import annotations

from pathlib import Path

from osipi_dagster.components.reference import BEGIN, END, yaml_reference
from osipi_dagster.components.schema import PIConnectionModel
from osipi_dagster.lib.settings import Settings
from osipi_dagster.lib.settings.reference import between

DOC = Path(__file__).resolve().parents[2] / "docs" / "connections.md"


def test_reference_is_current() -> None:
    text = DOC.read_text()
    assert between(text, BEGIN, END, yaml_reference()) == text, (
        "docs/connections.md is out of date: run .venv/bin/python scripts/connection_reference.py"
    )


def test_schema_is_the_contract_plus_dagster_names() -> None:
    fields = set(PIConnectionModel.model_fields)
    assert set(Settings.model_fields) <= fields
    assert {"key_prefix", "group", "pool", "lake_path", "schedules", "timezone"} <= fields
    reference = yaml_reference()
    for name in Settings.model_fields:
        assert f"`{name}" in reference, name
