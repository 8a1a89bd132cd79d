"""DataServer and EnumerationSet controllers: servers, their points (paged, filtered) and digital state sets.

GET /dataservers[?path=|?name=], /dataservers/{webId}, /dataservers/{webId}/points,
/dataservers/{webId}/license?module=, /dataservers/{webId}/enumerationsets, /enumerationsets/{webId}[?path=], /enumerationsets/{webId}/enumerationvalues,
/enumerationvalues/{webId}[?path=].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi import webid
from mock_pi.catalog import DIGITAL_SETS, Catalog, DataServer, DigitalSet
from mock_pi.http import PIHTTPError, Query, base_url, json_response, paged
from mock_pi.pitime import format_us
from mock_pi.routes.points import points_collection, web_id_type
from mock_pi.serialize import FieldSelector


def server_web_id(server: DataServer, kind: str) -> str:
    """The server's WebID of the requested webIdType (Full, IDOnly or PathOnly)."""
    if kind.lower() == "idonly":
        return "I1" + webid.DATA_SERVER + server.guid_b64
    if kind.lower() == "pathonly":
        return webid.path_only(webid.DATA_SERVER, server.path)
    return server.web_id


def server_body(request: Request, server: DataServer) -> dict[str, Any]:
    base = base_url(request)
    wid = server_web_id(server, web_id_type(Query.of(request)))
    self_link = f"{base}/dataservers/{wid}"
    return {
        "WebId": wid,
        "Id": str(server.id),
        "Name": server.name,
        "Path": server.path,
        "IsConnected": True,
        "ServerVersion": server.server_version,
        "ServerTime": format_us(request.app.state.emulator.clock.now_us()),
        "Links": {
            "Self": self_link,
            "Points": self_link + "/points",
            "EnumerationSets": self_link + "/enumerationsets",
        },
    }


def _require_server(request: Request) -> DataServer:
    web_id = request.path_params["web_id"]
    server = request.app.state.emulator.catalog.server(web_id)
    if server is None:
        raise PIHTTPError(404, f"Unknown or invalid data server WebID '{web_id}'.")
    return server


def _selected(request: Request, body: dict[str, Any]) -> Response:
    return json_response(FieldSelector(Query.of(request).get("selectedFields")).apply(body))


async def list_servers(request: Request) -> Response:
    """List, or GetByPath (`?path=\\\\SERVER`) and GetByName (`?name=SERVER`), case-insensitive as PI names are."""
    catalog: Catalog = request.app.state.emulator.catalog
    q = Query.of(request)
    path, name = q.get("path"), q.get("name")
    if path is not None and name is not None:
        raise PIHTTPError(400, "Give either the 'path' or the 'name' parameter, not both.")
    if path is not None:
        server = catalog.server_by_path(path)
        if server is None:
            raise PIHTTPError(404, f"PI Data Archive not found for path '{path}'.")
        return _selected(request, server_body(request, server))
    if name is not None:
        server = next((s for s in catalog.servers if s.name.lower() == name.strip().lower()), None)
        if server is None:
            raise PIHTTPError(404, f"PI Data Archive not found for name '{name}'.")
        return _selected(request, server_body(request, server))
    return _selected(request, {"Links": {}, "Items": [server_body(request, s) for s in catalog.servers]})


async def get_server(request: Request) -> Response:
    return _selected(request, server_body(request, _require_server(request)))


async def server_points(request: Request) -> Response:
    server = _require_server(request)
    q = Query.of(request)
    catalog: Catalog = request.app.state.emulator.catalog
    indices = catalog.filter_indices(server, q.get("nameFilter"), q.get("sourceFilter"))
    return points_collection(request, indices)


# License modules a Data Archive reports (PI Server "View point and module statistics"); names are case-sensitive.
AGGREGATE_MODULE = "pibasess.MaxAggregatePointModuleCount"
LICENSE_MODULES = (AGGREGATE_MODULE, "pibasess.MaxPointCount", "pibasess.MaxModuleCount")
UNLIMITED = "Infinity"


def licensed_streams(points: int) -> int:
    """The emulated license's data streams: twice the points, rounded up to 5,000, at least 10,000."""
    return max(10_000, -(-2 * points // 5_000) * 5_000)


async def server_license(request: Request) -> Response:
    """GetLicense: a module's TotalAmount, AmountUsed and AmountLeft as strings, "Infinity" for no limit. Data
    streams (points plus modules) are licensed; the point and module counts alone have no limit of their own. The
    emulator has no PI Module Database, so no modules are used."""
    server = _require_server(request)
    module = Query.of(request).get("module")
    if not module:
        raise PIHTTPError(400, "The 'module' parameter is required.")
    points = len(request.app.state.emulator.catalog.server_indices(server))
    if module == AGGREGATE_MODULE:
        total = licensed_streams(points)
        amounts = (str(total - points), str(points), str(total))
    elif module == "pibasess.MaxPointCount":
        amounts = (UNLIMITED, str(points), UNLIMITED)
    elif module == "pibasess.MaxModuleCount":
        amounts = (UNLIMITED, "0", UNLIMITED)
    else:
        raise PIHTTPError(
            404,
            f"No license with the module name '{module}' exists on data server '{server.name}' (module names are "
            f"case-sensitive; known here: {', '.join(LICENSE_MODULES)}).",
        )
    left, used, total_text = amounts
    body = {"AmountLeft": left, "AmountUsed": used, "Name": module, "TotalAmount": total_text, "Links": {}}
    return _selected(request, body)


def set_body(request: Request, server: DataServer, dset: DigitalSet) -> dict[str, Any]:
    catalog: Catalog = request.app.state.emulator.catalog
    web_id = catalog.enumeration_set_web_id(server, dset)
    self_link = f"{base_url(request)}/enumerationsets/{web_id}"
    return {
        "WebId": web_id,
        "Id": str(catalog_set_guid(catalog, server, dset)),
        "Name": dset.name,
        "Description": dset.description,
        "SerializeWithOrder": False,
        "Path": f"{server.path}\\{dset.name}",
        "Links": {
            "Self": self_link,
            "DataServer": f"{base_url(request)}/dataservers/{server.web_id}",
            "Values": self_link + "/enumerationvalues",
        },
    }


def catalog_set_guid(catalog: Catalog, server: DataServer, dset: DigitalSet) -> object:
    from mock_pi.webid import stable_guid

    return stable_guid(catalog.seed, "enumset", server.name, dset.name)


async def server_sets(request: Request) -> Response:
    server = _require_server(request)
    items = [set_body(request, server, dset) for dset in DIGITAL_SETS]
    return _selected(request, paged(request, items))


def _require_set(request: Request) -> tuple[DataServer, DigitalSet]:
    web_id = request.path_params["web_id"]
    found = request.app.state.emulator.catalog.enumeration_set(web_id)
    if found is None:
        raise PIHTTPError(404, f"Unknown or invalid enumeration set WebID '{web_id}'.")
    return found


async def get_set(request: Request) -> Response:
    server, dset = _require_set(request)
    return _selected(request, set_body(request, server, dset))


async def get_set_by_path(request: Request) -> Response:
    path = Query.of(request).get("path")
    if not path:
        raise PIHTTPError(400, "The 'path' parameter is required.")
    found = request.app.state.emulator.catalog.enumeration_set_by_path(path)
    if found is None:
        raise PIHTTPError(404, f"Enumeration set not found for path '{path}'.")
    return _selected(request, set_body(request, *found))


def value_body(
    request: Request, server: DataServer, dset: DigitalSet, name: str, code: int
) -> dict[str, Any]:
    catalog: Catalog = request.app.state.emulator.catalog
    base = base_url(request)
    web_id = catalog.enumeration_value_web_id(server, dset, name)
    return {
        "WebId": web_id,
        "Id": str(code),
        "Name": name,
        "Description": "",
        "Value": code,
        "Path": f"{server.path}\\{dset.name}\\{name}",
        "Parent": dset.name,
        "Links": {
            "Self": f"{base}/enumerationvalues/{web_id}",
            "EnumerationSet": f"{base}/enumerationsets/{catalog.enumeration_set_web_id(server, dset)}",
        },
    }


async def set_values(request: Request) -> Response:
    server, dset = _require_set(request)
    items = [value_body(request, server, dset, name, code) for name, code in dset.states]
    return _selected(request, paged(request, items))


def _find_value(
    catalog: Catalog, match: Callable[[DataServer, DigitalSet, str], bool]
) -> tuple[DataServer, DigitalSet, str, int] | None:
    for server in catalog.servers:
        for dset in DIGITAL_SETS:
            for name, code in dset.states:
                if match(server, dset, name):
                    return server, dset, name, code
    return None


async def get_value(request: Request) -> Response:
    """GET /enumerationvalues/{webId}: the Self link of each value a set lists."""
    web_id = request.path_params["web_id"]
    catalog: Catalog = request.app.state.emulator.catalog
    found = _find_value(
        catalog, lambda srv, dset, name: catalog.enumeration_value_web_id(srv, dset, name) == web_id
    )
    if found is None:
        raise PIHTTPError(404, f"Unknown or invalid enumeration value WebID '{web_id}'.")
    return _selected(request, value_body(request, *found))


async def get_value_by_path(request: Request) -> Response:
    """GET /enumerationvalues?path=\\\\SERVER\\Set\\State (case-insensitive)."""
    path = Query.of(request).get("path")
    if not path:
        raise PIHTTPError(400, "The 'path' parameter is required.")
    wanted = path.strip().lstrip("\\").upper()
    catalog: Catalog = request.app.state.emulator.catalog
    found = _find_value(catalog, lambda srv, dset, name: f"{srv.name}\\{dset.name}\\{name}".upper() == wanted)
    if found is None:
        raise PIHTTPError(404, f"Enumeration value not found for path '{path}'.")
    return _selected(request, value_body(request, *found))


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/dataservers", list_servers, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}", get_server, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}/points", server_points, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}/license", server_license, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}/enumerationsets", server_sets, methods=["GET"]),
    Route("/piwebapi/enumerationsets", get_set_by_path, methods=["GET"]),
    Route("/piwebapi/enumerationsets/{web_id}", get_set, methods=["GET"]),
    Route("/piwebapi/enumerationsets/{web_id}/enumerationvalues", set_values, methods=["GET"]),
    Route("/piwebapi/enumerationvalues", get_value_by_path, methods=["GET"]),
    Route("/piwebapi/enumerationvalues/{web_id}", get_value, methods=["GET"]),
]
