"""A canned PI Web API stand-in on 127.0.0.1 for reply shapes the emulator never sends (malformed bodies, a 500
inside a 207); it serves whatever a test's handler answers, and runs POST /batch (ParentIds, RequestTemplate) itself.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# handler(path below /piwebapi, query) -> (status, body) or (status, body, headers): body is JSON-serialisable, or
# bytes sent as they are; headers (e.g. Retry-After) go on a top-level reply only.
Handler = Callable[[str, dict[str, list[str]]], tuple[Any, ...]]
_PARAM = re.compile(r"\$\.(\w+)\.Content\.Items\[\*\]\.(\w+)")


class CannedServer:
    """A real HTTP server on a free loopback port; `calls` lists every request and sub-request it answered."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.api = f"http://127.0.0.1:{self.port}/piwebapi"
        app = Starlette(
            routes=[
                Route("/piwebapi/batch", self._batch, methods=["POST"]),
                Route("/piwebapi/{path:path}", self._get, methods=["GET"]),
            ]
        )
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> CannedServer:
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the canned PI Web API server did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)
        self._sock.close()

    def _answer(self, url: str) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(url)
        path = parts.path.split("/piwebapi", 1)[-1]
        self.calls.append(path + (f"?{parts.query}" if parts.query else ""))
        status, body, *headers = self.handler(path, parse_qs(parts.query))
        return status, body, (headers[0] if headers else {})

    async def _get(self, request: Request) -> Response:
        status, body, headers = self._answer(str(request.url))
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(raw, status_code=status, headers=headers, media_type="application/json")

    def _item(self, url: str) -> dict[str, Any]:
        status, body, _ = self._answer(url)
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return {"Status": status, "Headers": {}, "Content": body}

    async def _batch(self, request: Request) -> Response:
        spec_by_id: dict[str, Any] = orjson.loads(await request.body())
        results: dict[str, Any] = {}
        # Parents first: in this stand-in a request depends at most on requests without ParentIds.
        for key, spec in sorted(spec_by_id.items(), key=lambda kv: bool(kv[1].get("ParentIds"))):
            template = spec.get("RequestTemplate")
            if template is None:
                results[key] = self._item(spec["Resource"])
                continue
            match = _PARAM.fullmatch(spec["Parameters"][0])
            assert match is not None, spec
            parent = results[match.group(1)]
            if not 200 <= parent["Status"] < 300:
                # As PI (and mock_pi): a request whose parent failed is not run.
                results[key] = {
                    "Status": 409,
                    "Headers": {},
                    "Content": {"Errors": ["A parent request failed."]},
                }
                continue
            tokens = [str(i[match.group(2)]) for i in parent["Content"]["Items"]]
            items = [self._item(template["Resource"].replace("{0}", t)) for t in tokens]
            status = 200 if all(200 <= i["Status"] < 300 for i in items) else 207
            results[key] = {"Status": status, "Headers": {}, "Content": {"Total": len(items), "Items": items}}
        return Response(orjson.dumps(results), status_code=207, media_type="application/json")
