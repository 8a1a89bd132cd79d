"""osipi-dagster: PI System data (PI Web API) into Delta Lake as Dagster assets.

`osipi_dagster.PIConnection` is the component type `dg` lists and scaffolds. It is imported lazily, so importing
`osipi_dagster.lib` (which never imports Dagster) stays Dagster-free.
"""

from typing import Any

__all__ = ["PIConnection"]


def __getattr__(name: str) -> Any:
    if name == "PIConnection":
        from osipi_dagster.components.pi_connection import PIConnection

        return PIConnection
    raise AttributeError(f"module 'osipi_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "PIConnection"])
