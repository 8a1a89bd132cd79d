"""Architecture rules that keep the layers independent.

The PI client and lake writer never import Dagster; the emulator never imports the product.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_lib_has_no_dagster_import() -> None:
    offenders = [
        p for p, names in imported_modules(ROOT / "osipi_dagster" / "lib").items() if "dagster" in names
    ]
    assert offenders == []


def test_mock_pi_does_not_import_the_product() -> None:
    modules = imported_modules(ROOT / "mock_pi")
    assert modules, "mock_pi has no modules"
    offenders = [p for p, names in modules.items() if names & {"osipi_dagster", "dagster"}]
    assert offenders == []
