"""Small typed records for PI servers and AF databases returned by discovery calls.

Tables (points, elements, attributes, event frames, values) are polars frames; these are the handful of parents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self


@dataclass(frozen=True)
class _Server:
    web_id: str
    id: str
    name: str
    path: str
    is_connected: bool
    server_version: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        return cls(
            web_id=body["WebId"],
            id=str(body.get("Id", "")),
            name=body.get("Name", ""),
            path=body.get("Path", ""),
            is_connected=bool(body.get("IsConnected", True)),
            server_version=body.get("ServerVersion", "") or "",
        )


@dataclass(frozen=True)
class DataServer(_Server):
    """A PI Data Archive (GET /dataservers)."""


@dataclass(frozen=True)
class AssetServer(_Server):
    """An AF server (GET /assetservers)."""


@dataclass(frozen=True)
class AssetDatabase:
    web_id: str
    id: str
    name: str
    path: str
    description: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AssetDatabase:
        return cls(
            web_id=body["WebId"],
            id=str(body.get("Id", "")),
            name=body.get("Name", ""),
            path=body.get("Path", ""),
            description=body.get("Description", "") or "",
        )
