"""`PIConnection`s from a folder outside the package (OSIPI_CONNECTIONS_DIR): one `NAME/defs.yaml` each, written
as `dg scaffold defs` writes them, for deployments whose configuration is not part of the code (a mounted volume, a
ConfigMap, the demo's connections).

Each file loads with the same rules as one in `osipi_dagster/defs/` (`PIConnection.from_attributes`); a file that is
not a PIConnection, or bad YAML, is an error naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from osipi_dagster.components.pi_connection import PIConnection, PIConnectionError

TYPE_NAMES = ("osipi_dagster.PIConnection", "osipi_dagster.components.PIConnection")


def read_component(path: Path) -> dict[str, Any]:
    """The attributes of the PIConnection in `path`; raises PIConnectionError naming the file and the fix."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PIConnectionError(f"{path}: not valid YAML ({exc}): fix the file.") from None
    if not isinstance(doc, dict) or doc.get("type") not in TYPE_NAMES:
        found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise PIConnectionError(
            f"{path}: type is {found!r}, expected osipi_dagster.PIConnection: write 'type: "
            "osipi_dagster.PIConnection' and the connection's fields under 'attributes:'."
        )
    unknown = set(doc) - {"type", "attributes"}
    if unknown:
        raise PIConnectionError(
            f"{path}: unknown top-level keys {sorted(unknown)}: keep type and attributes."
        )
    attributes = doc.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise PIConnectionError(f"{path}: attributes must be a mapping of the connection's fields.")
    return attributes


def load_connections(folder: Path) -> list[PIConnection]:
    """Every `NAME/defs.yaml` directly under `folder`, sorted by name."""
    return [
        PIConnection.from_attributes(path.parent.name, read_component(path))
        for path in sorted(folder.glob("*/defs.yaml"))
    ]


def connections_defs(folder: Path) -> dg.Definitions:
    """The merged definitions of every connection in `folder` (empty when it holds none)."""
    built = [conn.build_defs(None) for conn in load_connections(folder)]  # type: ignore[arg-type]
    return dg.Definitions.merge(*built) if built else dg.Definitions()
