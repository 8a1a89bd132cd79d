"""GetMultiple (`points/multiple`, `elements/multiple`, `attributes/multiple`, `eventframes/multiple`): objects by
repeated `webId` and `path` parameters, each item `{Identifier, IdentifierType, Object, Exception}`.

`includeMode` All (default), ItemsWithoutException or ItemsWithException; 207 when a returned item holds an
exception. `asParallel` is accepted and has no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from mock_pi.http import PIHTTPError, Query, json_response
from mock_pi.serialize import FieldSelector

INCLUDE_MODES = ("All", "ItemsWithoutException", "ItemsWithException")


def multiple(
    q: Query,
    find: Callable[[str, str], Any | None],
    render: Callable[[Any], dict[str, Any]],
    label: str,
) -> Response:
    """`find(identifier_type, identifier)` → object or None; `render(object)` → its JSON body."""
    raw_mode = q.get("includeMode") or "All"
    mode = next((m for m in INCLUDE_MODES if m.lower() == raw_mode.lower()), None)
    if mode is None:
        raise PIHTTPError(
            400, f"The value '{raw_mode}' is not valid for includeMode; expected {', '.join(INCLUDE_MODES)}."
        )
    q.get_bool("asParallel", False)
    requested = [("WebId", w) for w in q.get_all("webId")] + [("Path", p) for p in q.get_all("path")]
    if not requested:
        raise PIHTTPError(400, "At least one webId or path parameter is required.")
    items: list[dict[str, Any]] = []
    for id_type, ident in requested:
        obj = find(id_type, ident)
        if obj is None:
            exception = {"Errors": [f"{label} not found for {id_type} '{ident}'."]}
            items.append(
                {"Identifier": ident, "IdentifierType": id_type, "Object": None, "Exception": exception}
            )
        else:
            items.append(
                {"Identifier": ident, "IdentifierType": id_type, "Object": render(obj), "Exception": None}
            )
    if mode == "ItemsWithoutException":
        items = [i for i in items if i["Exception"] is None]
    elif mode == "ItemsWithException":
        items = [i for i in items if i["Exception"] is not None]
    failed = any(i["Exception"] is not None for i in items)
    body = FieldSelector(q.get("selectedFields")).apply({"Links": {}, "Items": items})
    return json_response(body, status=207 if failed else 200)
