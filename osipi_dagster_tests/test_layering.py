"""Architecture rules that keep the layers independent.

The PI client and lake writer never import Dagster; the emulator never imports the product; a defs folder uses only
the names, resources and jobs of another, and no module imports another's private names.
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


def defs_imports() -> list[tuple[str, str, list[str]]]:
    """(importing module, imported module, names) for every import of an osipi_dagster module under defs/."""
    found = []
    for path in (ROOT / "osipi_dagster" / "defs").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("osipi_dagster"):
                names = [alias.name for alias in node.names]
                # `from osipi_dagster.defs.pi import jobs` imports the module osipi_dagster.defs.pi.jobs
                if ROOT.joinpath(*node.module.split(".")).is_dir():
                    found += [(module, f"{node.module}.{name}", []) for name in names]
                else:
                    found.append((module, node.module, names))
    return found


# What one defs folder may use of another: the names it shares, its resources, its jobs and its partition definitions
# (an asset elsewhere that lands the same hours must use the same partitions). Logic both need lives in
# osipi_dagster/lib; wiring details (assets, checks, reporting) stay private to their folder.
SHARED_DEFS_MODULES = {"names", "resources", "jobs", "partitions"}


def test_defs_folders_share_only_names_resources_jobs_and_partitions() -> None:
    found = defs_imports()
    # The scan sees package-relative module imports (`from osipi_dagster.defs.pi import jobs`).
    assert ("osipi_dagster.defs.quality.late_data", "osipi_dagster.defs.pi.jobs", []) in found
    offenders = []
    for module, imported, _ in found:
        parts, target = module.split("."), imported.split(".")
        if target[:2] != ["osipi_dagster", "defs"] or len(target) < 4:
            continue  # lib, or a top-level defs module such as defs/env.py
        if target[2] != parts[2] and target[3] not in SHARED_DEFS_MODULES:
            offenders.append(f"{module} imports {imported}")
    assert offenders == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{module} imports {name} from {imported}"
        for module, imported, names in defs_imports()
        for name in names
        if name.startswith("_") and imported != module
    ]
    assert offenders == []
