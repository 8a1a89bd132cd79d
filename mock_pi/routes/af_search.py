"""AF attribute searches: FindElementAttributes (`assetdatabases/{webId}/elementattributes`,
`elements/{webId}/elementattributes`) and GetAttributesQuery (`attributes/search`, AFSearch query syntax).

Both search element attributes at every depth (child attributes included), hidden and excluded ones too (neither call
has showHidden/showExcluded); results page with startIndex/maxCount (default 1000) as other collections.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from mock_pi.af import Attribute, Database, Element, wildcard
from mock_pi.http import PIHTTPError
from mock_pi.routes.af_common import API, Ctx, attribute_json, by_web_id, endpoint, sort_items
from mock_pi.routes.af_query import all_hold, attribute_matches, element_matches, parse_attribute_query

# AF value types an attribute may have (PI Web API "Value Types"); `attributeType` must name one of them.
VALUE_TYPES = ("Boolean", "Byte", "DateTime", "Double", "EnumerationValue", "Guid", "Int16", "Int32", "Int64",
               "Single", "String", "TimeSpan")  # fmt: skip
DESCRIPTION_CHARS = 440  # "Only the first 440 characters of the description will be searched."


def _value_type(ctx: Ctx) -> str | None:
    raw = ctx.q.get("attributeType")
    if not raw or raw.lower() == "any":
        return None
    for name in VALUE_TYPES:
        if name.lower() == raw.lower():
            return name
    raise PIHTTPError(
        400, f"The value '{raw}' is not valid for attributeType; expected one of {', '.join(VALUE_TYPES)}."
    )


def _elements(ctx: Ctx, children: list[Element]) -> list[Element]:
    """The elements under the search root: its children, or all descendants with searchFullHierarchy, filtered as
    GetElements filters them (a template matches derived templates too)."""
    element_type = ctx.q.get("elementType") or "Any"
    if element_type.lower() not in ("any", "other", "none"):
        return []  # emulated elements carry no element type other than the default
    scope = list(children)
    if ctx.q.get_bool("searchFullHierarchy", False):
        scope = [d for el in children for d in (el, *el.descendants())]
    return ctx.af.find_elements(
        scope,
        name_filter=ctx.q.get("elementNameFilter"),
        description_filter=ctx.q.get("elementDescriptionFilter"),
        template_name=ctx.q.get("elementTemplate"),
        category_name=ctx.q.get("elementCategory"),
    )


def _find_element_attributes(ctx: Ctx, children: list[Element]) -> dict[str, Any]:
    value_type = _value_type(ctx)
    name_re = wildcard(ctx.q.get("attributeNameFilter"))
    desc_re = wildcard(ctx.q.get("attributeDescriptionFilter"))
    category = (ctx.q.get("attributeCategory") or "").lower()

    def keep(a: Attribute) -> bool:
        return (
            (name_re is None or bool(name_re.match(a.name)))
            and (desc_re is None or bool(desc_re.match(a.spec.description[:DESCRIPTION_CHARS])))
            and (not category or category in (c.lower() for c in a.spec.categories))
            and (value_type is None or a.type.lower() == value_type.lower())
        )

    items = [
        a
        for el in _elements(ctx, children)
        for a in ctx.af.all_attributes(el, full_hierarchy=True)
        if keep(a)
    ]
    sort_items(
        ctx,
        items,
        {"Name": lambda a: a.name.lower(), "Description": lambda a: a.spec.description.lower(),
         "Type": lambda a: a.type.lower()},
    )  # fmt: skip
    return ctx.page(items, lambda a: attribute_json(ctx, a))


@endpoint
def database_element_attributes(ctx: Ctx) -> dict[str, Any]:
    return _find_element_attributes(ctx, by_web_id(ctx, Database, "asset database").roots)


@endpoint
def element_element_attributes(ctx: Ctx) -> dict[str, Any]:
    return _find_element_attributes(ctx, by_web_id(ctx, Element, "element").children)


@endpoint
def search_attributes(ctx: Ctx) -> dict[str, Any]:
    """GetAttributesQuery: attributes of the database's elements matching an AFSearch attribute query, in hierarchy
    order (elements in pre-order, each element's attributes as it lists them, children after their parent)."""
    db_web_id = ctx.q.get("databaseWebId")
    if not db_web_id:
        raise PIHTTPError(400, "The 'databaseWebId' parameter is required.")
    db = ctx.af.database(db_web_id)
    if db is None:
        raise PIHTTPError(404, f"The specified asset database '{db_web_id}' was not found.")
    element_terms, attribute_terms = parse_attribute_query(ctx.q.get("query") or "")
    items = [
        a
        for el in db.elements
        if all_hold(element_terms, el, element_matches)
        for a in ctx.af.all_attributes(el, full_hierarchy=True)
        if all_hold(attribute_terms, a, attribute_matches)
    ]
    return ctx.page(items, lambda a: attribute_json(ctx, a))


# Literal `attributes/search` must come before `attributes/{webId}` (af.py lists these routes first).
ROUTES: list[BaseRoute] = [
    Route(API + "/assetdatabases/{webId}/elementattributes", database_element_attributes, methods=["GET"]),
    Route(API + "/elements/{webId}/elementattributes", element_element_attributes, methods=["GET"]),
    Route(API + "/attributes/search", search_attributes, methods=["GET"]),
]
