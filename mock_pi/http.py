"""HTTP helpers shared by the emulator's controllers: JSON bodies, PI error shapes, paging and query parsing.

PI Web API binds query parameters case-insensitively and repeats multi-valued ones; errors are {"Errors": [...]}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class PIHTTPError(Exception):
    """Raised inside a handler to answer with a PI-shaped error body."""

    def __init__(self, status: int, *messages: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {'; '.join(messages)}")
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}


def dumps(body: Any) -> bytes:
    return orjson.dumps(body)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(status: int, *messages: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"Errors": list(messages)}, status=status, headers=headers)


class Query:
    """Case-insensitive view of a request's query string (PI Web API binds parameters case-insensitively)."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._items: dict[str, list[str]] = {}
        for k, v in items:
            self._items.setdefault(k.lower(), []).append(v)

    @classmethod
    def of(cls, request: Request) -> Query:
        return cls(request.query_params.multi_items())

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._items.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._items.get(name.lower(), []))

    def get_int(self, name: str, default: int) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise PIHTTPError(400, f"The value '{raw}' is not valid for {name}.") from None

    def get_bool(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        low = raw.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise PIHTTPError(400, f"The value '{raw}' is not valid for {name}.")


def base_url(request: Request) -> str:
    """The public base of the API, e.g. http://127.0.0.1:8000/piwebapi (links are absolute URLs, as in PI)."""
    return f"{request.url.scheme}://{request.url.netloc}/piwebapi"


def paged(request: Request, items: Sequence[Any], *, default_max: int = 1000) -> dict[str, Any]:
    """A collection body with startIndex/maxCount paging and First/Previous/Next/Last links, as PI pages collections."""
    q = Query.of(request)
    start = q.get_int("startIndex", 0)
    count = q.get_int("maxCount", default_max)
    if start < 0 or count < 0:
        raise PIHTTPError(400, "startIndex and maxCount must be non-negative.")
    page = list(items[start : start + count])
    links: dict[str, str] = {}
    total = len(items)
    if count > 0 and total > count:

        def at(index: int) -> str:
            params = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "startindex"]
            params.append(("startIndex", str(index)))
            return (
                str(request.url.replace_query_params(**{})).split("?")[0]
                + "?"
                + "&".join(f"{k}={_quote(v)}" for k, v in params)
            )

        links["First"] = at(0)
        if start > 0:
            links["Previous"] = at(max(0, start - count))
        if start + count < total:
            links["Next"] = at(start + count)
        links["Last"] = at(((total - 1) // count) * count)
    return {"Links": links, "Items": page}


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
