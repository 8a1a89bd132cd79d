"""Point controller: GET /points/{webId}, /points?path=, /points/multiple, /points/search, /points/{webId}/attributes.

Also owns the PI Point JSON body shared with the DataServer controller. The search language lives in
mock_pi.pointquery, the point attribute table in mock_pi.pointattributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi import pointattributes
from mock_pi.catalog import Catalog, DataServer, Point, wildcard_match
from mock_pi.http import PIHTTPError, Query, base_url, json_response, paged
from mock_pi.pitime import parse_time
from mock_pi.pointattributes import point_attributes
from mock_pi.pointquery import VALUE_FILTERS, PointQuery, QueryError, parse_point_query
from mock_pi.routes.multiple import multiple
from mock_pi.serialize import FieldSelector, timed_value

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
    """GetMultiple: points by repeated webId and path parameters (see mock_pi.routes.multiple)."""
    state = request.app.state.emulator
    q = Query.of(request)
    kind = web_id_type(q)
    base = base_url(request)

    def find(id_type: str, ident: str) -> Point | None:
        return state.catalog.point(ident) if id_type == "WebId" else state.catalog.point_by_path(ident)

    return multiple(q, find, lambda p: point_body(state.catalog, p, base, kind), "PI Point")


def _search_query(q: Query, now_us: int) -> PointQuery:
    try:
        return parse_point_query(
            q.get("query"),
            pointattributes.KINDS,
            now_us=now_us,
            search_name_and_descriptor=q.get_bool("searchNameAndDescriptor", False),
            search_option=q.get("searchOption"),
        )
    except QueryError as exc:
        raise PIHTTPError(400, str(exc)) from None


def _snapshot(state: Any, point: Point) -> dict[str, Any]:
    """The value filters' view of a point's current value (empty before the point has any event)."""
    values = state.archive.snapshot(point)
    if len(values) == 0:
        return {}
    tv = timed_value(values, 0, point)
    value = tv["Value"]
    return {
        "value": value["Name"] if isinstance(value, dict) else value,
        "timestamp": parse_time(tv["Timestamp"], 0),
        "isgood": tv["Good"],
        "questionable": tv["Questionable"],
        "substituted": tv["Substituted"],
        "annotated": tv["Annotated"],
    }


def _accessor(state: Any, index: int) -> Callable[[str], Any]:
    """Attribute values of catalog point `index`, built only as far as the query asks (tag names need no Point)."""
    catalog: Catalog = state.catalog
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name == "tag":
            return catalog.names[index]
        point = catalog.point_at(index)
        if name in VALUE_FILTERS:
            if "snapshot" not in cache:
                cache["snapshot"] = _snapshot(state, point)
            return cache["snapshot"].get(name)
        return pointattributes.GETTERS[name](point)

    return get


async def search(request: Request) -> Response:
    """GetPointsBySearch: the PI point query language (mock_pi.pointquery) over one data server's points."""
    state = request.app.state.emulator
    q = Query.of(request)
    server_web_id = q.get("dataServerWebId")
    if not server_web_id:
        raise PIHTTPError(400, "The 'dataServerWebId' parameter is required.")
    server: DataServer | None = state.catalog.server(server_web_id)
    if server is None:
        raise PIHTTPError(404, f"Unknown or invalid data server WebID '{server_web_id}'.")
    # points_collection checks this too; here it fails before the scan.
    if q.get_int("maxCount", 1000) > SEARCH_MAX_COUNT:
        raise PIHTTPError(400, f"The maxCount parameter cannot be greater than {SEARCH_MAX_COUNT}.")
    query = _search_query(q, state.clock.now_us())
    matches = [i for i in state.catalog.server_indices(server) if query.matches(_accessor(state, i))]
    return points_collection(request, matches, max_limit=SEARCH_MAX_COUNT)


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
    # The PI Developers Club client (generated from AVEVA's swagger) asks for `points/search/`.
    Route("/piwebapi/points/search/", search, methods=["GET"]),
    Route("/piwebapi/points/{web_id}", get_point, methods=["GET"]),
    Route("/piwebapi/points/{web_id}/attributes", get_attributes, methods=["GET"]),
    Route("/piwebapi/points/{web_id}/attributes/{name}", get_attribute, methods=["GET"]),
]
