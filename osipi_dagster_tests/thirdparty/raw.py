"""The reference side of the third-party client tests: plain httpx reads of the same emulator, and value helpers."""

from __future__ import annotations

import math
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

USERNAME = "tp-user"
PASSWORD = "tp-secret"
SERVER = "PISRV01"
# 2024-05-01 10:00–11:00 UTC (the emulator's clock is frozen at 12:00): a window with irregular recorded values.
START = "2024-05-01T10:00:00Z"
END = "2024-05-01T11:00:00Z"


def emulator_args(tags: int) -> tuple[str, ...]:
    """mock_pi arguments: seed 42, clock frozen at 2024-05-01T12:00Z, HTTP Basic only with these tests' user."""
    return (
        "--seed", "42",
        "--tags", str(tags),
        "--clock", "frozen:2024-05-01T12:00:00Z",
        "--auth", "basic",
        "--username", USERNAME,
        "--password", PASSWORD,
    )  # fmt: skip


class RawPI:
    """GET requests with HTTP Basic against one PI Web API root; every body is the server's JSON, untouched."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.http = httpx.Client(base_url=api, auth=(USERNAME, PASSWORD), timeout=30.0)

    def __enter__(self) -> RawPI:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.http.close()

    def get(self, url: str, **params: Any) -> Any:
        response = self.http.get(url, params=params)
        response.raise_for_status()
        return response.json()

    def server(self, name: str = SERVER) -> dict[str, Any]:
        return next(s for s in self.get("/dataservers")["Items"] if s["Name"] == name)

    def points(self, server: str = SERVER, **params: Any) -> list[dict[str, Any]]:
        """Every point of a data server (paged by startIndex), optionally filtered (e.g. nameFilter)."""
        url = self.server(server)["Links"]["Points"]
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(url, maxCount=100, startIndex=len(items), **params)["Items"]
            items += page
            if len(page) < 100:
                return items

    def point(self, name: str, server: str = SERVER) -> dict[str, Any]:
        return self.get("/points", path=f"\\\\{server}\\{name}")

    def stream(self, name: str, action: str, **params: Any) -> Any:
        """GET streams/{webId}/{action} of a point of SERVER, by name."""
        return self.get(f"/streams/{self.point(name)['WebId']}/{action}", **params)


def ts(text: str) -> datetime:
    """A PI Web API timestamp (UTC ISO 8601 ending in Z) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def same_number(a: Any, b: Any) -> bool:
    """Equal numbers, NaN equal to NaN (clients turn system states into NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
