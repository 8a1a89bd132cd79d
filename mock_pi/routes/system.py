"""Home and System controllers: GET /piwebapi/, /system, /system/status, /system/userinfo, /system/versions.

Shapes follow the reference samples (PI Web API 2019 SP1, 1.13.0.6298).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_pi.auth import identity_of
from mock_pi.http import base_url, json_response
from mock_pi.pitime import format_us

PRODUCT_TITLE = "PI Web API 2019 SP1"
PRODUCT_VERSION = "1.13.0.6298"
COMPONENTS = (
    "OSIsoft.OMF.SvcPlugin",
    "OSIsoft.REST.Core",
    "OSIsoft.REST.Documentation",
    "OSIsoft.REST.Services",
    "OSIsoft.REST.StreamUpdates",
    "OSIsoft.Search.SvcLib",
)


async def home(request: Request) -> Response:
    base = base_url(request)
    return json_response(
        {
            "Links": {
                "Self": base + "/",
                "AssetServers": base + "/assetservers",
                "DataServers": base + "/dataservers",
                "System": base + "/system",
            }
        }
    )


async def landing(request: Request) -> Response:
    base = base_url(request) + "/system"
    return json_response(
        {
            "ProductTitle": PRODUCT_TITLE,
            "ProductVersion": PRODUCT_VERSION,
            "Links": {
                "Self": base,
                "CacheInstances": base + "/cacheinstances",
                "Configuration": base + "/configuration",
                "UserInfo": base + "/userinfo",
                "Versions": base + "/versions",
                "Status": base + "/status",
                "InstanceConfiguration": base + "/instanceconfiguration",
            },
        }
    )


async def status(request: Request) -> Response:
    state = request.app.state.emulator
    uptime_min = (time.monotonic() - state.started_monotonic) / 60.0
    return json_response(
        {
            "UpTimeInMinutes": round(uptime_min, 1),
            "State": "Running",
            "CacheInstances": 0,
            "ServerTime": format_us(state.clock.now_us()),
        }
    )


async def userinfo(request: Request) -> Response:
    return json_response(identity_of(request.scope).userinfo())


async def versions(request: Request) -> Response:
    major_minor, _, build = PRODUCT_VERSION.rpartition(".")
    entry = {"FullVersion": PRODUCT_VERSION, "MajorMinorRevision": major_minor, "Build": build}
    return json_response({name: dict(entry) for name in COMPONENTS})


ROUTES: list[BaseRoute] = [
    Route("/piwebapi", home, methods=["GET"]),
    Route("/piwebapi/", home, methods=["GET"]),
    Route("/piwebapi/system", landing, methods=["GET"]),
    Route("/piwebapi/system/status", status, methods=["GET"]),
    Route("/piwebapi/system/userinfo", userinfo, methods=["GET"]),
    Route("/piwebapi/system/versions", versions, methods=["GET"]),
]
