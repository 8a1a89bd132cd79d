"""Terminal and JSON output: aligned columns, and a guard that no secret reaches stdout."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from osipi_dagster.lib.settings import Settings

SECRET_FIELDS = ("password", "bearer_token", "oidc_client_secret")
_URL_USERINFO = re.compile(r"(https?://)[^/@\s]+@")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as left-aligned columns under a header (None prints as '-'); the last column is not padded."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, values[-1]]).rstrip()

    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def redact(text: str, settings: Settings | None) -> str:
    """`text` without the connection's secrets or URL credentials."""
    for field in SECRET_FIELDS if settings is not None else ():
        value = getattr(settings, field, None)
        if value:
            text = text.replace(value, "***")
    return _URL_USERINFO.sub(r"\1***@", text)


def emit(text: str, settings: Settings | None = None) -> None:
    sys.stdout.write(redact(text, settings) + "\n")


def emit_json(data: Any, settings: Settings | None = None) -> None:
    emit(json.dumps(data, indent=2, default=str, ensure_ascii=False), settings)
