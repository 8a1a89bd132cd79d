"""Rewrite the variable reference in README.md and .env.example from the one field list (osipi_dagster/lib/settings).

Run after adding or changing a setting: `.venv/bin/python scripts/settings_reference.py`. A test fails until you do.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from osipi_dagster.lib.settings.reference import BEGIN, END, between, env_example, readme_table  # noqa: E402

TARGETS = {ROOT / "README.md": readme_table, ROOT / ".env.example": env_example}


def main() -> None:
    for path, render in TARGETS.items():
        path.write_text(between(path.read_text(), BEGIN, END, render()))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
