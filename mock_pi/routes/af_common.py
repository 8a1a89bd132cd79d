"""Shared machinery of the AF controllers: request context, the handler wrapper (PI errors, selectedFields), AF
object JSON (asset servers, databases, templates, elements, attributes, event frames) and attribute values.

JSON shapes follow PI Web API (PascalCase, absolute Links); field order follows the reference's sample bodies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mock_pi.af import (
    OPEN_END_TEXT,
    SERVER_VERSION,
    SEVERITIES,
    STATIC_TIMESTAMP_US,
    AFModel,
    AssetServer,
    Attribute,
    Database,
    Element,
    ElementTemplate,
    EventFrame,
    wildcard,
)
from mock_pi.http import PIHTTPError, Query, base_url, error_response, json_response, paged
from mock_pi.pitime import format_us, parse_time
from mock_pi.serialize import FieldSelector, digital_value, timed_value

API = "/piwebapi"
GOOD_FLAGS = {"Good": True, "Questionable": False, "Substituted": False, "Annotated": False}


@dataclass
class Ctx:
    """Everything a handler needs, read once per request."""

    request: Request
    state: Any  # EmulatorState
    af: AFModel
    now_us: int
    base: str
    q: Query
    body: bytes = b""

    def path_param(self, name: str = "webId") -> str:
        return str(self.request.path_params[name])

    def time(self, name: str, default: str) -> int:
        """A PI time parameter → UTC µs; 400 naming the parameter when it does not parse."""
        raw = self.q.get(name)
        text = default if raw is None or raw.strip() == "" else raw
        try:
            return parse_time(text, self.now_us, self.q.get("timeZone") or "UTC")
        except ValueError as exc:
            raise PIHTTPError(
                400, f"The value '{text}' of parameter '{name}' is not a valid time: {exc}"
            ) from None

    def choice(self, name: str, default: str, allowed: Sequence[str]) -> str:
        """A case-insensitive enumeration parameter, returned in its canonical spelling."""
        raw = self.q.get(name) or default
        for option in allowed:
            if option.lower() == raw.lower():
                return option
        raise PIHTTPError(
            400, f"The value '{raw}' is not valid for {name}; expected one of {', '.join(allowed)}."
        )

    def page(self, items: Sequence[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """startIndex/maxCount paging (PI default page 1000) with First/Previous/Next/Last links."""
        body = paged(self.request, items)
        body["Items"] = [render(x) for x in body["Items"]]
        return body


def endpoint(fn: Callable[[Ctx], dict[str, Any] | Response]) -> Callable[[Request], Any]:
    """Run a synchronous AF handler in the threadpool; PIHTTPError → PI error body; selectedFields applied."""

    def run(request: Request, body: bytes) -> Response:
        state = request.app.state.emulator
        q = Query.of(request)
        ctx = Ctx(request, state, state.af, state.clock.now_us(), base_url(request), q, body)
        try:
            body = fn(ctx)
        except PIHTTPError as exc:
            return error_response(exc.status, *exc.messages, headers=exc.headers)
        if isinstance(body, Response):
            return body
        return json_response(FieldSelector(q.get("selectedFields")).apply(body))

    @functools.wraps(fn)
    async def handler(request: Request) -> Response:
        body = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
        # AF work is CPU-bound Python (e.g. generating a day of 10,000 event frames): keep the event loop free.
        return await run_in_threadpool(run, request, body)

    return handler


def not_found(kind: str, key: str) -> PIHTTPError:
    return PIHTTPError(404, f"The specified {kind} '{key}' was not found.")


def by_web_id(ctx: Ctx, kind: type, label: str) -> Any:
    """The AF object of the given class named by the {webId} path parameter, or 404."""
    web_id = ctx.path_param()
    obj = ctx.af.resolve(web_id)
    if not isinstance(obj, kind):
        raise not_found(label, web_id)
    return obj


def by_path(ctx: Ctx, kind: type, label: str) -> Any:
    """The AF object of the given class named by the required ?path= parameter, or 400/404."""
    path = ctx.q.get("path")
    if not path:
        raise PIHTTPError(400, "The 'path' parameter is required.")
    obj = ctx.af.by_path(path)
    if not isinstance(obj, kind):
        raise not_found(label, path)
    return obj


def sort_items(
    ctx: Ctx, items: list[Any], fields: dict[str, Callable[[Any], Any]], default: str = "Name"
) -> None:
    """In-place sortField/sortOrder (AF compares names case-insensitively; ties keep hierarchy order)."""
    field = ctx.choice("sortField", default, list(fields))
    order = ctx.choice("sortOrder", "Ascending", ("Ascending", "Descending"))
    items.sort(key=fields[field], reverse=order == "Descending")


# ------------------------------------------------------------------------------------------------ object JSON


def server_json(ctx: Ctx, srv: AssetServer) -> dict[str, Any]:
    self_url = f"{ctx.base}/assetservers/{srv.web_id}"
    return {
        "WebId": srv.web_id,
        "Id": str(srv.id),
        "Name": srv.name,
        "Description": "Emulated PI AF Server",
        "Path": srv.path,
        "IsConnected": True,
        "ServerVersion": SERVER_VERSION,
        "ServerTime": format_us(ctx.now_us),
        "ExtendedProperties": {},
        "Links": {"Self": self_url, "Databases": f"{self_url}/assetdatabases"},
    }


def database_json(ctx: Ctx, db: Database) -> dict[str, Any]:
    self_url = f"{ctx.base}/assetdatabases/{db.web_id}"
    return {
        "WebId": db.web_id,
        "Id": str(db.id),
        "Name": db.name,
        "Description": db.description,
        "Path": db.path,
        "ExtendedProperties": {},
        "Links": {
            "Self": self_url,
            "Elements": f"{self_url}/elements",
            "ElementTemplates": f"{self_url}/elementtemplates",
            "EventFrames": f"{self_url}/eventframes",
            "AssetServer": f"{ctx.base}/assetservers/{db.server.web_id}",
        },
    }


def template_json(ctx: Ctx, t: ElementTemplate) -> dict[str, Any]:
    links = {
        "Self": f"{ctx.base}/elementtemplates/{t.web_id}",
        "Database": f"{ctx.base}/assetdatabases/{t.db.web_id}",
    }
    if t.base is not None:
        links["BaseTemplate"] = f"{ctx.base}/elementtemplates/{t.base.web_id}"
    return {
        "WebId": t.web_id,
        "Id": str(t.id),
        "Name": t.name,
        "Description": t.description,
        "Path": t.path,
        "AllowElementToExtend": True,
        "BaseTemplate": t.base.name if t.base else "",
        "InstanceType": t.instance_type,
        "NamingPattern": "",
        "CategoryNames": list(t.categories),
        "ExtendedProperties": {},
        "Severity": t.severity,
        "CanBeAcknowledged": t.can_be_acknowledged,
        "Links": links,
    }


def _stream_set_links(base: str, web_id: str) -> dict[str, str]:
    url = f"{base}/streamsets/{web_id}"
    return {
        "InterpolatedData": f"{url}/interpolated",
        "RecordedData": f"{url}/recorded",
        "SummaryData": f"{url}/summary",
        "Value": f"{url}/value",
        "EndValue": f"{url}/end",
    }


def element_json(ctx: Ctx, el: Element) -> dict[str, Any]:
    self_url = f"{ctx.base}/elements/{el.web_id}"
    links = {
        "Self": self_url,
        "Attributes": f"{self_url}/attributes",
        "Elements": f"{self_url}/elements",
        "Database": f"{ctx.base}/assetdatabases/{el.db.web_id}",
    }
    if el.parent is not None:
        links["Parent"] = f"{ctx.base}/elements/{el.parent.web_id}"
    links["Template"] = f"{ctx.base}/elementtemplates/{el.template.web_id}"
    links["EventFrames"] = f"{self_url}/eventframes"
    links.update(_stream_set_links(ctx.base, el.web_id))
    return {
        "WebId": el.web_id,
        "Id": str(el.id),
        "Name": el.name,
        "Description": el.description,
        "Path": el.path,
        "TemplateName": el.template.name,
        "HasChildren": bool(el.children),
        "CategoryNames": list(el.categories),
        "ExtendedProperties": {},
        "Links": links,
    }


def attribute_json(ctx: Ctx, a: Attribute) -> dict[str, Any]:
    self_url = f"{ctx.base}/attributes/{a.web_id}"
    links = {"Self": self_url, "Attributes": f"{self_url}/attributes"}
    if isinstance(a.owner, Element):
        links["Element"] = f"{ctx.base}/elements/{a.owner.web_id}"
    else:
        links["EventFrame"] = f"{ctx.base}/eventframes/{a.owner.web_id}"
    if a.parent is not None:
        links["Parent"] = f"{ctx.base}/attributes/{a.parent.web_id}"
    links["Value"] = f"{self_url}/value"
    if a.point is not None:
        stream = f"{ctx.base}/streams/{a.web_id}"
        links.update(
            {
                "Point": f"{ctx.base}/points/{a.point.web_id}",
                "InterpolatedData": f"{stream}/interpolated",
                "RecordedData": f"{stream}/recorded",
                "PlotData": f"{stream}/plot",
                "SummaryData": f"{stream}/summary",
                "EndValue": f"{stream}/end",
            }
        )
    point = a.point
    return {
        "WebId": a.web_id,
        "Id": str(a.id),
        "Name": a.name,
        "Description": a.spec.description,
        "Path": a.path,
        "Type": a.type,
        "TypeQualifier": a.type_qualifier,
        "DefaultUnitsName": a.units_name,
        "DisplayDigits": point.display_digits if point is not None else -5,
        "DataReferencePlugIn": "PI Point" if point is not None else "",
        "ConfigString": a.config_string,
        "IsConfigurationItem": a.spec.config_item,
        "IsExcluded": a.spec.excluded,
        "IsHidden": a.spec.hidden,
        "IsManualDataEntry": False,
        "HasChildren": bool(a.children),
        "CategoryNames": list(a.spec.categories),
        "Step": bool(point.step) if point is not None else False,
        "TraitName": a.spec.trait,
        "DefaultUnitsNameAbbreviation": a.units_abbr,
        "Span": float(point.span) if point is not None else 0.0,
        "Zero": float(point.zero) if point is not None else 0.0,
        "Links": links,
    }


def event_frame_json(ctx: Ctx, ef: EventFrame) -> dict[str, Any]:
    self_url = f"{ctx.base}/eventframes/{ef.web_id}"
    end = ctx.af.end_us(ef, ctx.now_us)
    links = {
        "Self": self_url,
        "Attributes": f"{self_url}/attributes",
        "EventFrames": f"{self_url}/eventframes",
        "Database": f"{ctx.base}/assetdatabases/{ef.db.web_id}",
        "ReferencedElements": f"{self_url}/referencedelements",
        "PrimaryReferencedElement": f"{ctx.base}/elements/{ef.primary.web_id}",
    }
    if ef.parent is not None:
        links["Parent"] = f"{ctx.base}/eventframes/{ef.parent.web_id}"
    links["Template"] = f"{ctx.base}/elementtemplates/{ef.template.web_id}"
    links.update(_stream_set_links(ctx.base, ef.web_id))
    return {
        "WebId": ef.web_id,
        "Id": str(ef.id),
        "Name": ef.name,
        "Description": f"{ef.template.description} on {ef.primary.name}",
        "TemplateName": ef.template.name,
        "HasChildren": bool(ef.children),
        "CategoryNames": list(ef.categories),
        "ExtendedProperties": {},
        "StartTime": format_us(ef.start_us),
        "EndTime": OPEN_END_TEXT if end is None else format_us(end),
        "Severity": ef.severity,
        "AcknowledgedBy": "",
        "AcknowledgedDate": "1970-01-01T00:00:00Z",
        "CanBeAcknowledged": ef.template.can_be_acknowledged,
        "IsAcknowledged": False,
        "IsAnnotated": False,
        "IsLocked": False,
        # Analyses capture attribute values when a frame closes; open frames have none yet.
        "AreValuesCaptured": end is not None,
        "RefElementWebIds": [r.web_id for r in ef.refs],
        "Security": {
            "CanAnnotate": True,
            "CanDelete": False,
            "CanExecute": False,
            "CanRead": True,
            "CanReadData": True,
            "CanSubscribe": True,
            "CanSubscribeOthers": False,
            "CanWrite": False,
            "CanWriteData": False,
            "HasAdmin": False,
            "Rights": ["Read", "ReadData", "Subscribe", "Annotate"],
        },
        "Path": ef.path,
        "Links": links,
    }


# ------------------------------------------------------------------------------------------------ attribute values


def value_time_us(ctx: Ctx, a: Attribute) -> int:
    """An attribute's default time context: an event frame's end (now while open), otherwise now."""
    if isinstance(a.owner, EventFrame):
        end = ctx.af.end_us(a.owner, ctx.now_us)
        return ctx.now_us if end is None else min(end, ctx.now_us)
    return ctx.now_us


def attribute_value(ctx: Ctx, a: Attribute, at_us: int | None = None) -> dict[str, Any]:
    """TimedValue of an attribute: static values at the epoch; PI Point ones from the archive at the time context."""
    if a.point is None:
        return static_timed_value(a)
    at = value_time_us(ctx, a) if at_us is None else at_us
    if isinstance(a.owner, EventFrame):
        # The captured value: the PI Point data reference's value at the frame's end (interpolated for continuous
        # points, the previous event for step points), as AF computes it at that time context.
        values = ctx.state.archive.interpolate(a.point, [at])
    else:
        values = ctx.state.archive.snapshot(a.point, at)
    if len(values) == 0:
        # Before the point existed PI answers the "No Data" system state.
        return {
            "Timestamp": format_us(at),
            "Value": digital_value(248, a.point, True),
            "UnitsAbbreviation": a.units_abbr,
            "Good": False,
            "Questionable": False,
            "Substituted": False,
            "Annotated": False,
        }
    tv = timed_value(values, 0, a.point)
    tv["UnitsAbbreviation"] = a.units_abbr
    return tv


def static_timed_value(a: Attribute) -> dict[str, Any]:
    v = a.value
    if a.type == "DateTime" and isinstance(v, int):
        v = format_us(v)
    elif a.type == "EnumerationValue" and isinstance(v, tuple):
        v = {"Name": v[0], "Value": v[1], "IsSystem": False}
    return {
        "Timestamp": format_us(STATIC_TIMESTAMP_US),
        "Value": v,
        "UnitsAbbreviation": a.units_abbr,
        **GOOD_FLAGS,
    }


# ------------------------------------------------------------------------------------------------ attribute filters


def filter_attributes(ctx: Ctx, attrs: Sequence[Attribute]) -> list[Attribute]:
    """nameFilter, categoryName, templateName (the template defining the attribute), valueType, showExcluded, showHidden."""
    name_re = wildcard(ctx.q.get("nameFilter"))
    category = (ctx.q.get("categoryName") or "").lower()
    template = ctx.q.get("templateName") or ""
    value_type = (ctx.q.get("valueType") or "").lower()
    show_excluded = ctx.q.get_bool("showExcluded", False)
    show_hidden = ctx.q.get_bool("showHidden", False)
    out: list[Attribute] = []
    for a in attrs:
        if a.spec.excluded and not show_excluded:
            continue
        if a.spec.hidden and not show_hidden:
            continue
        if name_re is not None and not name_re.match(a.name):
            continue
        if category and category not in (c.lower() for c in a.spec.categories):
            continue
        # Members of the named template: attribute templates it defines (a base template's are its members too).
        if template and a.template.name.lower() != template.lower():
            continue
        if value_type and value_type != "any" and a.type.lower() != value_type:
            continue
        out.append(a)
    return out


def severity_filter(ctx: Ctx) -> set[str] | None:
    raw = ctx.q.get_all("severity")
    if not raw:
        return None
    out = set()
    for s in raw:
        match = next((x for x in SEVERITIES if x.lower() == s.lower()), None)
        if match is None:
            raise PIHTTPError(
                400, f"The value '{s}' is not valid for severity; expected one of {', '.join(SEVERITIES)}."
            )
        out.add(match)
    return out
