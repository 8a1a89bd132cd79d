"""Rewrite the PIConnection YAML reference in docs/connections.md from the component's schema.

Run after adding or changing a setting: `.venv/bin/python scripts/connection_reference.py`. A test fails until you do.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from osipi_dagster.components.reference import BEGIN, END, yaml_reference  # noqa: E402
from osipi_dagster.lib.settings.reference import between  # noqa: E402

DOC = ROOT / "docs" / "connections.md"


def main() -> None:
    DOC.write_text(between(DOC.read_text(), BEGIN, END, yaml_reference()))
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
