"""Point controller: GET /points/{webId}, /points?path=, /points/multiple, /points/search, /points/{webId}/attributes.

Also owns the PI Point JSON body and point-attribute table shared with the DataServer controller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, overload

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.catalog import CREATED_US, Catalog, DataServer, Point, wildcard_match
from mock_pi.http import PIHTTPError, Query, base_url, json_response, paged
from mock_pi.pitime import format_us
from mock_pi.serialize import FieldSelector

SEARCH_MAX_COUNT = 1000


def web_id_type(q: Query) -> str:
    kind = q.get("webIdType", "Full") or "Full"
    if kind.lower() not in ("full", "idonly", "pathonly"):
        raise PIHTTPError(400, f"The webIdType '{kind}' is not supported (use Full, IDOnly or PathOnly).")
    return kind


def point_body(catalog: Catalog, point: Point, base: str, kind: str = "Full") -> dict[str, Any]:
    wid = catalog.point_web_id(point, kind)
    self_link = f"{base}/points/{wid}"
    stream = f"{base}/streams/{wid}"
    return {
        "WebId": wid,
        "Id": point.id,
        "Name": point.name,
        "Path": point.path,
        "Descriptor": point.descriptor,
        "PointClass": "classic",
        "PointType": point.point_type,
        "DigitalSetName": point.digital_set_name,
        "Span": point.span,
        "Zero": point.zero,
        "EngineeringUnits": point.units,
        "Step": point.step,
        "Future": point.future,
        "DisplayDigits": point.display_digits,
        "Links": {
            "Self": self_link,
            "DataServer": f"{base}/dataservers/{point.server.web_id}",
            "Attributes": self_link + "/attributes",
            "InterpolatedData": stream + "/interpolated",
            "RecordedData": stream + "/recorded",
            "PlotData": stream + "/plot",
            "SummaryData": stream + "/summary",
            "Value": stream + "/value",
            "EndValue": stream + "/end",
        },
    }


class LazyPoints(Sequence[dict[str, Any]]):
    """Point bodies built only for the page being served (catalogs hold up to 100,000+ points)."""

    def __init__(self, indices: Sequence[int], build: Callable[[int], dict[str, Any]]) -> None:
        self._indices = indices
        self._build = build

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._build(j) for j in self._indices[i]]
        return self._build(self._indices[i])


def points_collection(request: Request, indices: Sequence[int], *, max_limit: int | None = None) -> Response:
    state = request.app.state.emulator
    q = Query.of(request)
    if max_limit is not None and q.get_int("maxCount", 1000) > max_limit:
        raise PIHTTPError(400, f"The maxCount parameter cannot be greater than {max_limit}.")
    kind = web_id_type(q)
    base = base_url(request)
    items = LazyPoints(indices, lambda i: point_body(state.catalog, state.catalog.point_at(i), base, kind))
    body = paged(request, items)
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


def require_point(request: Request, web_id: str) -> Point:
    point = request.app.state.emulator.catalog.point(web_id)
    if point is None:
        raise PIHTTPError(404, f"Unknown or invalid WebID '{web_id}'.")
    return point


async def get_point(request: Request) -> Response:
    state = request.app.state.emulator
    q = Query.of(request)
    point = require_point(request, request.path_params["web_id"])
    body = point_body(state.catalog, point, base_url(request), web_id_type(q))
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


async def get_by_path(request: Request) -> Response:
    state = request.app.state.emulator
    q = Query.of(request)
    path = q.get("path")
    if not path:
        raise PIHTTPError(400, "The 'path' parameter is required.")
    point = state.catalog.point_by_path(path)
    if point is None:
        raise PIHTTPError(404, f"PI Point not found for path '{path}'.")
    body = point_body(state.catalog, point, base_url(request), web_id_type(q))
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


async def get_multiple(request: Request) -> Response:
    """GetMultiple: items {Identifier, IdentifierType, Object, Exception}; 207 when some failed."""
    state = request.app.state.emulator
    q = Query.of(request)
    kind = web_id_type(q)
    base = base_url(request)
    items: list[dict[str, Any]] = []
    failed = False
    requested = [("WebId", w) for w in q.get_all("webId")] + [("Path", p) for p in q.get_all("path")]
    if not requested:
        raise PIHTTPError(400, "At least one webId or path parameter is required.")
    for id_type, ident in requested:
        point = state.catalog.point(ident) if id_type == "WebId" else state.catalog.point_by_path(ident)
        if point is None:
            failed = True
            items.append(
                {
                    "Identifier": ident,
                    "IdentifierType": id_type,
                    "Object": None,
                    "Exception": {"Errors": [f"PI Point not found for {id_type} '{ident}'."]},
                }
            )
        else:
            obj = point_body(state.catalog, point, base, kind)
            items.append({"Identifier": ident, "IdentifierType": id_type, "Object": obj, "Exception": None})
    body = FieldSelector(q.get("selectedFields")).apply({"Links": {}, "Items": items})
    return json_response(body, status=207 if failed else 200)


_CONDITION = re.compile(r'(\w+)\s*:=\s*("([^"]*)"|\'([^\']*)\'|\S+)')
_SEARCH_FIELDS: dict[str, Callable[[Point], str]] = {
    "tag": lambda p: p.name,
    "name": lambda p: p.name,
    "descriptor": lambda p: p.descriptor,
    "pointtype": lambda p: p.point_type,
    "pointsource": lambda p: p.point_source,
    "engunits": lambda p: p.units,
    "digitalset": lambda p: p.digital_set_name,
}


def parse_point_query(query: str) -> list[tuple[str, re.Pattern[str]]]:
    """`Tag:=CDT* PointType:=Float32` (AND implied or explicit); a bare word matches the tag name."""
    conditions: list[tuple[str, re.Pattern[str]]] = []
    rest = _CONDITION.sub(" ", query)
    for m in _CONDITION.finditer(query):
        field = m.group(1).lower()
        if field not in _SEARCH_FIELDS:
            raise PIHTTPError(
                400,
                f"Unsupported point attribute '{m.group(1)}' in query '{query}'; use {', '.join(_SEARCH_FIELDS)}.",
            )
        value = m.group(3) if m.group(3) is not None else m.group(4) if m.group(4) is not None else m.group(2)
        conditions.append((field, wildcard_match(value)))
    for word in rest.split():
        if word.upper() == "AND":
            continue
        if word.upper() == "OR" or "(" in word or ")" in word:
            raise PIHTTPError(400, f"Only AND-ed conditions are supported in point queries, got '{query}'.")
        conditions.append(("tag", wildcard_match(word.strip("'\""))))
    return conditions


async def search(request: Request) -> Response:
    state = request.app.state.emulator
    q = Query.of(request)
    server_web_id = q.get("dataServerWebId")
    if not server_web_id:
        raise PIHTTPError(400, "The 'dataServerWebId' parameter is required.")
    server: DataServer | None = state.catalog.server(server_web_id)
    if server is None:
        raise PIHTTPError(404, f"Unknown or invalid data server WebID '{server_web_id}'.")
    conditions = parse_point_query(q.get("query") or "*")
    both = q.get_bool("searchNameAndDescriptor", False)
    catalog = state.catalog
    matches: list[int] = []
    for i in catalog.server_indices(server):
        point = None
        ok = True
        for field, rx in conditions:
            if field in ("tag", "name") and not both:
                ok = bool(rx.match(catalog.names[i]))
            else:
                point = point or catalog.point_at(i)
                ok = bool(rx.match(_SEARCH_FIELDS[field](point)))
                if not ok and field in ("tag", "name") and both:
                    ok = bool(rx.match(point.descriptor))
            if not ok:
                break
        if ok:
            matches.append(i)
    return points_collection(request, matches, max_limit=SEARCH_MAX_COUNT)


def point_attributes(point: Point) -> list[tuple[str, Any]]:
    """The classic point's attribute table, as PI's /points/{webId}/attributes lists them."""
    created = format_us(CREATED_US)
    return [
        ("archiving", 1),
        ("changedate", created),
        ("changer", "piadmin"),
        ("compdev", round(point.span * 0.002, 6)),
        ("compdevpercent", 0.2),
        ("compmax", 28800),
        ("compmin", 0),
        ("compressing", 1),
        ("creationdate", created),
        ("creator", "piadmin"),
        ("descriptor", point.descriptor),
        ("digitalset", point.digital_set_name),
        ("displaydigits", point.display_digits),
        ("engunits", point.units),
        ("excdev", round(point.span * 0.001, 6)),
        ("excdevpercent", 0.1),
        ("excmax", 600),
        ("excmin", 0),
        ("exdesc", ""),
        ("future", 0),
        ("instrumenttag", point.name),
        ("location1", 1),
        ("location2", 0),
        ("location3", 0),
        ("location4", 1),
        ("location5", 0),
        ("pointid", point.id),
        ("pointsource", point.point_source),
        ("pointtype", point.point_type),
        ("ptclassname", "classic"),
        ("recno", point.id),
        ("scan", 1),
        ("shutdown", 1),
        ("span", point.span),
        ("step", int(point.step)),
        ("tag", point.name),
        ("typicalvalue", point.zero + point.span / 2),
        ("zero", point.zero),
    ]


def _attribute_item(base: str, web_id: str, name: str, value: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Value": value,
        "Links": {"Self": f"{base}/points/{web_id}/attributes/{name}", "Point": f"{base}/points/{web_id}"},
    }


async def get_attributes(request: Request) -> Response:
    q = Query.of(request)
    web_id = request.path_params["web_id"]
    point = require_point(request, web_id)
    table = point_attributes(point)
    by_name = {name: value for name, value in table}
    names = q.get_all("name")
    if names:
        missing = [n for n in names if n.lower() not in by_name]
        if missing:
            raise PIHTTPError(
                400, *(f"Point attribute '{n}' not found for point '{point.name}'." for n in missing)
            )
        selected = [(n.lower(), by_name[n.lower()]) for n in names]
    else:
        name_filter = q.get("nameFilter")
        rx = wildcard_match(name_filter) if name_filter else None
        selected = [(n, v) for n, v in table if rx is None or rx.match(n)]
    base = base_url(request)
    body = {"Links": {}, "Items": [_attribute_item(base, web_id, n, v) for n, v in selected]}
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


async def get_attribute(request: Request) -> Response:
    q = Query.of(request)
    web_id = request.path_params["web_id"]
    point = require_point(request, web_id)
    name = request.path_params["name"]
    by_name = dict(point_attributes(point))
    if name.lower() not in by_name:
        raise PIHTTPError(400, f"Point attribute '{name}' not found for point '{point.name}'.")
    body = _attribute_item(base_url(request), web_id, name.lower(), by_name[name.lower()])
    return json_response(FieldSelector(q.get("selectedFields")).apply(body))


async def list_root(request: Request) -> Response:
    # /points without path: PI answers GetByPath, which requires `path`.
    return await get_by_path(request)


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/points", list_root, methods=["GET"]),
    Route("/piwebapi/points/multiple", get_multiple, methods=["GET"]),
    Route("/piwebapi/points/search", search, methods=["GET"]),
    Route("/piwebapi/points/{web_id}", get_point, methods=["GET"]),
    Route("/piwebapi/points/{web_id}/attributes", get_attributes, methods=["GET"]),
    Route("/piwebapi/points/{web_id}/attributes/{name}", get_attribute, methods=["GET"]),
]
