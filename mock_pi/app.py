"""create_app(config) -> Starlette: assembles the emulator's routes, middleware and PI-shaped error handling.

Middleware, outermost first: metrics → faults → auth → CSRF → routes; /health lives outside /piwebapi.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_pi import auth, channels, metrics
from mock_pi.config import EmulatorConfig
from mock_pi.faults import FaultMiddleware
from mock_pi.http import PIHTTPError, error_response, json_response
from mock_pi.routes import admin, af, batch, dataservers, points, streams, streamsets, system
from mock_pi.state import EmulatorState

API = "/piwebapi"
CSRF_MESSAGE = (
    "This request has been rejected: a {method} under /piwebapi must carry an X-Requested-With header "
    "(PI Web API CSRF defense is enabled)."
)


class CSRFMiddleware:
    """PI Web API's EnableCSRFDefense: non-GET requests under /piwebapi need an X-Requested-With header."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in ("GET", "HEAD", "OPTIONS")
            and scope["path"].startswith(API)
            and not any(k.lower() == b"x-requested-with" for k, _ in scope["headers"])
        ):
            response = error_response(403, CSRF_MESSAGE.format(method=scope["method"]))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def api_not_found(request: Request) -> Response:
    raise PIHTTPError(404, f"The requested resource '{request.url.path}' was not found.")


async def pi_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PIHTTPError)
    return error_response(exc.status, *exc.messages, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def api_routes() -> list[BaseRoute]:
    """Every route answering under /piwebapi (also used by the batch dispatcher)."""
    return [
        *system.ROUTES,
        *dataservers.ROUTES,
        *points.ROUTES,
        *streams.ROUTES,
        *streamsets.ROUTES,
        *batch.ROUTES,
        *af.ROUTES,
    ]


def create_app(config: EmulatorConfig) -> Starlette:
    state = EmulatorState.build(config)
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *metrics.ROUTES,
        *auth.ROUTES,
        *channels.ROUTES,
        *api_routes(),
    ]
    if config.admin:
        routes.extend(admin.ROUTES)
    # Last: anything else under /piwebapi is a PI-shaped 404 rather than Starlette's plain text.
    routes.append(
        Route(API + "/{rest:path}", api_not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    )
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(metrics.MetricsMiddleware, state=state),
            Middleware(FaultMiddleware, state=state),
            Middleware(auth.AuthMiddleware, state=state),
            Middleware(CSRFMiddleware, state=state),
        ],
        exception_handlers={PIHTTPError: pi_error_handler, HTTPException: http_error_handler},
    )
    app.state.emulator = state
    # Build the middleware now rather than on the first request, so a bad setting (e.g. --faults) fails at start-up.
    app.middleware_stack = app.build_middleware_stack()
    return app
