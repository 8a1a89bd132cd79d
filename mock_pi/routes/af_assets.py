"""AF asset controllers: asset servers, asset databases, element templates, elements (children, hierarchy search,
AFSearch queries) and attributes (lists, child attributes, by path, static values).

Collections page with startIndex/maxCount (default 1000) and sort by Name unless told otherwise, as PI Web API does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.af import AssetServer, Attribute, Database, Element, ElementTemplate, EventFrame, wildcard
from mock_pi.http import PIHTTPError
from mock_pi.routes.af_common import (
    API,
    Ctx,
    attribute_json,
    attribute_value,
    by_path,
    by_web_id,
    database_json,
    element_json,
    endpoint,
    event_frame_json,
    filter_attributes,
    not_found,
    server_json,
    sort_items,
    template_json,
)
from mock_pi.routes.af_query import all_hold, element_matches, parse_element_query
from mock_pi.routes.multiple import multiple

# --- asset servers and databases -------------------------------------------------------------------------------


@endpoint
def list_asset_servers(ctx: Ctx) -> dict[str, Any]:
    """List, or GetByPath (`?path=\\\\AF`) and GetByName (`?name=AF`, case-insensitive)."""
    path, name = ctx.q.get("path"), ctx.q.get("name")
    if path is not None and name is not None:
        raise PIHTTPError(400, "Give either the 'path' or the 'name' parameter, not both.")
    if path is not None:
        return server_json(ctx, by_path(ctx, AssetServer, "asset server"))
    if name is not None:
        if ctx.af.server.name.lower() != name.strip().lower():
            raise not_found("asset server", name)
        return server_json(ctx, ctx.af.server)
    return {"Links": {}, "Items": [server_json(ctx, ctx.af.server)]}


@endpoint
def get_asset_server(ctx: Ctx) -> dict[str, Any]:
    return server_json(ctx, by_web_id(ctx, AssetServer, "asset server"))


@endpoint
def list_databases(ctx: Ctx) -> dict[str, Any]:
    srv = by_web_id(ctx, AssetServer, "asset server")
    return {"Links": {}, "Items": [database_json(ctx, db) for db in srv.databases]}


@endpoint
def database_by_path(ctx: Ctx) -> dict[str, Any]:
    return database_json(ctx, by_path(ctx, Database, "asset database"))


@endpoint
def get_database(ctx: Ctx) -> dict[str, Any]:
    return database_json(ctx, by_web_id(ctx, Database, "asset database"))


@endpoint
def database_templates(ctx: Ctx) -> dict[str, Any]:
    db = by_web_id(ctx, Database, "asset database")
    templates = list(db.templates.values())
    # PI's `query` here is a name pattern (field Name).
    query = wildcard(ctx.q.get("query"))
    if query is not None:
        templates = [t for t in templates if query.match(t.name)]
    templates.sort(key=lambda t: t.name.lower())
    return ctx.page(templates, lambda t: template_json(ctx, t))


@endpoint
def get_template(ctx: Ctx) -> dict[str, Any]:
    return template_json(ctx, by_web_id(ctx, ElementTemplate, "element template"))


@endpoint
def template_by_path(ctx: Ctx) -> dict[str, Any]:
    return template_json(ctx, by_path(ctx, ElementTemplate, "element template"))


# --- elements --------------------------------------------------------------------------------------------------


def _element_list(ctx: Ctx, children: list[Element]) -> dict[str, Any]:
    """GetElements on a database or element: direct children, or all descendants with searchFullHierarchy."""
    element_type = ctx.q.get("elementType") or "Any"
    if element_type.lower() not in ("any", "other", "none"):
        # Emulated elements carry no element type other than the default.
        items: list[Element] = []
    else:
        scope: list[Element] = list(children)
        if ctx.q.get_bool("searchFullHierarchy", False):
            scope = []
            for el in children:
                scope.append(el)
                scope.extend(el.descendants())
        items = ctx.af.find_elements(
            scope,
            name_filter=ctx.q.get("nameFilter"),
            description_filter=ctx.q.get("descriptionFilter"),
            template_name=ctx.q.get("templateName"),
            category_name=ctx.q.get("categoryName"),
        )
    sort_items(ctx, items, {"Name": lambda e: e.name.lower(), "Description": lambda e: e.description.lower()})
    return ctx.page(items, lambda e: element_json(ctx, e))


@endpoint
def database_elements(ctx: Ctx) -> dict[str, Any]:
    return _element_list(ctx, by_web_id(ctx, Database, "asset database").roots)


@endpoint
def element_children(ctx: Ctx) -> dict[str, Any]:
    return _element_list(ctx, by_web_id(ctx, Element, "element").children)


@endpoint
def get_element(ctx: Ctx) -> dict[str, Any]:
    return element_json(ctx, by_web_id(ctx, Element, "element"))


@endpoint
def element_by_path(ctx: Ctx) -> dict[str, Any]:
    return element_json(ctx, by_path(ctx, Element, "element"))


@endpoint
def search_elements(ctx: Ctx) -> dict[str, Any]:
    db_web_id = ctx.q.get("databaseWebId")
    if not db_web_id:
        raise PIHTTPError(400, "The 'databaseWebId' parameter is required.")
    db = ctx.af.database(db_web_id)
    if db is None:
        raise PIHTTPError(404, f"The specified asset database '{db_web_id}' was not found.")
    terms = parse_element_query(ctx.q.get("query") or "")
    items = [el for el in db.elements if all_hold(terms, el, element_matches)]
    items.sort(key=lambda e: e.name.lower())
    return ctx.page(items, lambda e: element_json(ctx, e))


# --- attributes ------------------------------------------------------------------------------------------------


def attribute_list(ctx: Ctx, owner: Element | EventFrame | Attribute) -> dict[str, Any]:
    """GetAttributes of an element, event frame or attribute, with PI's filters, sorting and paging."""
    attrs = ctx.af.all_attributes(owner, full_hierarchy=ctx.q.get_bool("searchFullHierarchy", False))
    items = filter_attributes(ctx, attrs)
    sort_items(ctx, items, {"Name": lambda a: a.name.lower()})
    return ctx.page(items, lambda a: attribute_json(ctx, a))


@endpoint
def element_attributes(ctx: Ctx) -> dict[str, Any]:
    return attribute_list(ctx, by_web_id(ctx, Element, "element"))


@endpoint
def get_attribute(ctx: Ctx) -> dict[str, Any]:
    return attribute_json(ctx, by_web_id(ctx, Attribute, "attribute"))


@endpoint
def attribute_by_path(ctx: Ctx) -> dict[str, Any]:
    return attribute_json(ctx, by_path(ctx, Attribute, "attribute"))


@endpoint
def attribute_children(ctx: Ctx) -> dict[str, Any]:
    return attribute_list(ctx, by_web_id(ctx, Attribute, "attribute"))


# --- GetMultiple ----------------------------------------------------------------------------------------------


def _multiple(
    kind: type, label: str, render: Callable[[Ctx, Any], dict[str, Any]]
) -> Callable[[Ctx], Response]:
    def handler(ctx: Ctx) -> Response:
        def find(id_type: str, ident: str) -> Any:
            obj = ctx.af.resolve(ident) if id_type == "WebId" else ctx.af.by_path(ident)
            # Event frames are generated for whole days; one that has not started yet does not exist.
            if isinstance(obj, EventFrame) and obj.start_us > ctx.now_us:
                return None
            return obj if isinstance(obj, kind) else None

        return multiple(ctx.q, find, lambda obj: render(ctx, obj), label)

    return handler


elements_multiple = endpoint(_multiple(Element, "Element", element_json))
attributes_multiple = endpoint(_multiple(Attribute, "Attribute", attribute_json))
event_frames_multiple = endpoint(_multiple(EventFrame, "Event frame", event_frame_json))


@endpoint
def get_attribute_value(ctx: Ctx) -> dict[str, Any]:
    # PI answers GetValue for any data reference (AFAttribute.GetValue): PI Point attributes give the snapshot, or
    # for event-frame attributes the value at the frame's end (the captured value).
    return attribute_value(ctx, by_web_id(ctx, Attribute, "attribute"))


ROUTES: list[BaseRoute] = [
    Route(API + "/assetservers", list_asset_servers, methods=["GET"]),
    Route(API + "/assetservers/{webId}", get_asset_server, methods=["GET"]),
    Route(API + "/assetservers/{webId}/assetdatabases", list_databases, methods=["GET"]),
    Route(API + "/assetdatabases", database_by_path, methods=["GET"]),
    Route(API + "/assetdatabases/{webId}", get_database, methods=["GET"]),
    Route(API + "/assetdatabases/{webId}/elements", database_elements, methods=["GET"]),
    Route(API + "/assetdatabases/{webId}/elementtemplates", database_templates, methods=["GET"]),
    Route(API + "/elementtemplates", template_by_path, methods=["GET"]),
    Route(API + "/elementtemplates/{webId}", get_template, methods=["GET"]),
    Route(API + "/elements", element_by_path, methods=["GET"]),
    Route(API + "/elements/multiple", elements_multiple, methods=["GET"]),
    Route(API + "/elements/search", search_elements, methods=["GET"]),
    Route(API + "/elements/{webId}", get_element, methods=["GET"]),
    Route(API + "/elements/{webId}/elements", element_children, methods=["GET"]),
    Route(API + "/elements/{webId}/attributes", element_attributes, methods=["GET"]),
    Route(API + "/attributes", attribute_by_path, methods=["GET"]),
    Route(API + "/attributes/multiple", attributes_multiple, methods=["GET"]),
    # Here rather than with the other event-frame routes: it must come before /eventframes/{webId}.
    Route(API + "/eventframes/multiple", event_frames_multiple, methods=["GET"]),
    Route(API + "/attributes/{webId}", get_attribute, methods=["GET"]),
    Route(API + "/attributes/{webId}/attributes", attribute_children, methods=["GET"]),
    Route(API + "/attributes/{webId}/value", get_attribute_value, methods=["GET"]),
]
