"""DataServer and EnumerationSet controllers: servers, their points (paged, filtered) and digital state sets.

GET /dataservers[?path=], /dataservers/{webId}, /dataservers/{webId}/points, /dataservers/{webId}/enumerationsets,
/enumerationsets/{webId}[?path=], /enumerationsets/{webId}/enumerationvalues.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.catalog import DIGITAL_SETS, Catalog, DataServer, DigitalSet
from mock_pi.http import PIHTTPError, Query, base_url, json_response, paged
from mock_pi.pitime import format_us
from mock_pi.routes.points import points_collection
from mock_pi.serialize import FieldSelector


def server_body(request: Request, server: DataServer) -> dict[str, Any]:
    base = base_url(request)
    self_link = f"{base}/dataservers/{server.web_id}"
    return {
        "WebId": server.web_id,
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
    catalog: Catalog = request.app.state.emulator.catalog
    path = Query.of(request).get("path")
    if path is not None:
        server = catalog.server_by_path(path)
        if server is None:
            raise PIHTTPError(404, f"PI Data Archive not found for path '{path}'.")
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


async def set_values(request: Request) -> Response:
    server, dset = _require_set(request)
    catalog: Catalog = request.app.state.emulator.catalog
    base = base_url(request)
    set_web_id = catalog.enumeration_set_web_id(server, dset)
    items = []
    for name, code in dset.states:
        web_id = catalog.enumeration_value_web_id(server, dset, name)
        items.append(
            {
                "WebId": web_id,
                "Id": str(code),
                "Name": name,
                "Description": "",
                "Value": code,
                "Path": f"{server.path}\\{dset.name}\\{name}",
                "Parent": dset.name,
                "Links": {
                    "Self": f"{base}/enumerationvalues/{web_id}",
                    "EnumerationSet": f"{base}/enumerationsets/{set_web_id}",
                },
            }
        )
    return _selected(request, paged(request, items))


ROUTES: list[BaseRoute] = [
    Route("/piwebapi/dataservers", list_servers, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}", get_server, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}/points", server_points, methods=["GET"]),
    Route("/piwebapi/dataservers/{web_id}/enumerationsets", server_sets, methods=["GET"]),
    Route("/piwebapi/enumerationsets", get_set_by_path, methods=["GET"]),
    Route("/piwebapi/enumerationsets/{web_id}", get_set, methods=["GET"]),
    Route("/piwebapi/enumerationsets/{web_id}/enumerationvalues", set_values, methods=["GET"]),
]
