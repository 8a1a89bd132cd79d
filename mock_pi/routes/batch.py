"""Batch controller: POST /piwebapi/batch with ParentIds, JSONPath Parameters and RequestTemplate fan-out → 207.

Sub-requests run in-process against this app's router (never over the network, any host/port ignored), under the
batch caller's identity; independent requests of one wave run concurrently, as PI runs them in parallel.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.http import PIHTTPError, json_response

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_SEGMENT = re.compile(r"""\.(\*|[^.\[\]]+)|\[\s*(\*|-?\d+|'[^']*'|"[^"]*")\s*\]""")
# Scope keys forwarded to sub-requests so they run as the batch's caller with the app's exception handlers.
_FORWARDED_SCOPE_KEYS = ("mock_pi.identity", "starlette.exception_handlers", "user", "auth")


class JSONPathError(ValueError):
    pass


def jsonpath(root: Any, expr: str) -> list[Any]:
    """A small JSONPath: `$.id.Content.Items[*].WebId`, `[0]`, `['key']`, `.*`; returns every selected token."""
    text = expr.strip()
    if not text.startswith("$"):
        raise JSONPathError(f"JSONPath '{expr}' must start with '$'.")
    pos = 1
    nodes = [root]
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise JSONPathError(f"Cannot parse JSONPath '{expr}' at position {pos}.")
        pos = m.end()
        token = m.group(1) if m.group(1) is not None else m.group(2)
        out: list[Any] = []
        for node in nodes:
            if token == "*":
                if isinstance(node, dict):
                    out.extend(node.values())
                elif isinstance(node, list):
                    out.extend(node)
            elif m.group(2) is not None and token[0] in "'\"":
                key = token[1:-1]
                if isinstance(node, dict) and key in node:
                    out.append(node[key])
            elif m.group(2) is not None:
                if isinstance(node, list) and -len(node) <= int(token) < len(node):
                    out.append(node[int(token)])
            elif isinstance(node, dict):
                if token in node:
                    out.append(node[token])
                else:
                    # PI matches property names case-insensitively.
                    match = next((v for k, v in node.items() if k.lower() == token.lower()), _MISSING)
                    if match is not _MISSING:
                        out.append(match)
            elif isinstance(node, list) and token.lstrip("-").isdigit():
                idx = int(token)
                if -len(node) <= idx < len(node):
                    out.append(node[idx])
        nodes = out
    return nodes


_MISSING = object()


def _result(status: int, content: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"Status": status, "Headers": headers or {}, "Content": content}


def _error(status: int, *messages: str) -> dict[str, Any]:
    return _result(status, {"Errors": list(messages)}, {"Content-Type": "application/json; charset=utf-8"})


def _field(spec: dict[str, Any], name: str) -> Any:
    for k, v in spec.items():
        if k.lower() == name.lower():
            return v
    return None


def _token_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _substitute(template: str, args: list[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i >= len(args):
            raise JSONPathError(
                f"Placeholder {{{i}}} has no matching entry in Parameters ({len(args)} given)."
            )
        return args[i]

    return _PLACEHOLDER.sub(repl, template)


async def _dispatch(
    request: Request, method: str, url: str, content: str | None, extra_headers: dict[str, str]
) -> dict[str, Any]:
    parts = urlsplit(url)
    raw_path = parts.path
    if not raw_path.lower().startswith("/piwebapi"):
        if not parts.scheme and not raw_path.startswith("/"):
            raw_path = "/piwebapi/" + raw_path
        else:
            return _error(400, f"The resource '{url}' is not a PI Web API resource of this server.")
    outer = request.scope
    headers: list[tuple[bytes, bytes]] = [
        (k, v) for k, v in outer["headers"] if k.lower() in (b"host", b"authorization", b"cookie")
    ]
    headers.append((b"content-type", b"application/json"))
    headers.append((b"x-requested-with", b"batch"))
    for k, v in extra_headers.items():
        headers.append((str(k).lower().encode("latin-1"), str(v).encode("latin-1")))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": outer.get("scheme", "http"),
        "server": outer.get("server"),
        "client": outer.get("client"),
        "root_path": "",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": parts.query.encode("latin-1", "replace"),
        "headers": headers,
        "app": request.app,
        "state": {},
    }
    for key in _FORWARDED_SCOPE_KEYS:
        if key in outer:
            scope[key] = outer[key]
    body = (content or "").encode("utf-8")
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects; the sub-request finishes first
        return {"type": "http.disconnect"}

    status = 500
    resp_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                name = k.decode("latin-1")
                if name.lower() in ("content-type", "location", "retry-after", "www-authenticate"):
                    resp_headers["-".join(p.capitalize() for p in name.split("-"))] = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app.router(scope, receive, send)
    except PIHTTPError as exc:
        return _error(exc.status, *exc.messages)
    except HTTPException as exc:
        return _error(exc.status_code, str(exc.detail))
    except Exception as exc:  # a sub-request failure must not fail the other items
        return _error(500, f"{type(exc).__name__}: {exc}")
    raw = b"".join(chunks)
    parsed: Any = ""
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = raw.decode("utf-8", "replace")
    return _result(status, parsed, resp_headers)


async def _run_item(request: Request, key: str, spec: Any, results: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        return _error(400, f"Request '{key}' must be an object with Method and Resource.")
    method = str(_field(spec, "Method") or "GET").upper()
    if method not in METHODS:
        return _error(400, f"Request '{key}': Method '{method}' is not supported.")
    template = _field(spec, "RequestTemplate")
    resource = _field(spec, "Resource")
    if isinstance(template, dict):
        resource = _field(template, "Resource")
    if not isinstance(resource, str) or not resource:
        return _error(400, f"Request '{key}' has no Resource (or RequestTemplate.Resource).")
    content = _field(spec, "Content")
    if content is not None and not isinstance(content, str):
        content = orjson.dumps(content).decode()
    headers = _field(spec, "Headers") or {}
    params = _field(spec, "Parameters") or []
    try:
        if resource.startswith("$"):
            found = jsonpath(results, resource)
            if len(found) != 1 or not isinstance(found[0], str):
                return _error(
                    400, f"Request '{key}': Resource JSONPath '{resource}' selected {len(found)} values."
                )
            resource = found[0]
        columns = [[_token_text(v) for v in jsonpath(results, p)] for p in params]
    except JSONPathError as exc:
        return _error(400, f"Request '{key}': {exc}")
    for p, col in zip(params, columns, strict=True):
        if not col:
            return _error(400, f"Request '{key}': Parameter '{p}' selected no value.")
    if not isinstance(template, dict):
        if any(len(col) > 1 for col in columns):
            return _error(
                400, f"Request '{key}': a Parameter selected several values; use RequestTemplate to fan out."
            )
        args = [col[0] for col in columns]
        try:
            url = _substitute(resource, args)
            body = _substitute(content, args) if content else content
        except JSONPathError as exc:
            return _error(400, f"Request '{key}': {exc}")
        return await _dispatch(request, method, url, body, headers)
    lengths = {len(c) for c in columns if len(c) > 1}
    if len(lengths) > 1:
        return _error(
            400, f"Request '{key}': Parameters select different numbers of values {sorted(lengths)}."
        )
    n = lengths.pop() if lengths else 1
    calls = []
    for i in range(n):
        args = [col[i] if len(col) > 1 else col[0] for col in columns]
        try:
            url = _substitute(resource, args)
            body = _substitute(content, args) if content else content
        except JSONPathError as exc:
            return _error(400, f"Request '{key}': {exc}")
        calls.append(_dispatch(request, method, url, body, headers))
    items = list(await asyncio.gather(*calls))
    all_ok = all(200 <= it["Status"] < 300 for it in items)
    return _result(200 if all_ok else 207, {"Total": len(items), "Items": items}, {})


async def execute(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise PIHTTPError(400, f"The batch request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise PIHTTPError(400, "The batch request body must be a JSON object of id → request.")
    results: dict[str, Any] = {}
    pending = dict(body)
    while pending:
        ready: list[str] = []
        for key, spec in pending.items():
            parents = [str(p) for p in (_field(spec, "ParentIds") or [])] if isinstance(spec, dict) else []
            unknown = [p for p in parents if p not in body]
            if unknown:
                results[key] = _error(400, f"Request '{key}': ParentIds {unknown} are not ids of this batch.")
                ready.append(key)
                continue
            if all(p in results for p in parents):
                failed = [p for p in parents if not 200 <= results[p]["Status"] < 300]
                if failed:
                    results[key] = _error(
                        409, f"Request '{key}' was not run because its parent request(s) {failed} failed."
                    )
                ready.append(key)
        if not ready:
            for key in pending:
                results[key] = _error(400, f"Request '{key}' is part of a ParentIds cycle.")
            break
        to_run = [k for k in ready if k not in results]
        outputs = await asyncio.gather(*(_run_item(request, k, pending[k], results) for k in to_run))
        for k, out in zip(to_run, outputs, strict=True):
            results[k] = out
        for k in ready:
            pending.pop(k)
    return json_response({k: results[k] for k in body}, status=207)


ROUTES: list[BaseRoute] = [Route("/piwebapi/batch", execute, methods=["POST"])]
