"""Asset Framework controllers of the emulator, assembled: asset servers, databases, templates, elements,
attributes, attribute searches, event frames, stream sets by parent (element / event frame), and the admin
event-frame close action.

`ROUTES` holds every route (paths under /piwebapi, plus /admin/eventframes/... which answers 404 without --admin).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from mock_pi.routes import af_assets, af_eventframes, af_search, af_streamsets

# Order matters where literal segments share a prefix with {webId} ones (e.g. /elements/search): each module lists
# its literal routes first.
ROUTES: list[BaseRoute] = [
    *af_search.ROUTES,
    *af_assets.ROUTES,
    *af_eventframes.ROUTES,
    *af_streamsets.ROUTES,
    *af_eventframes.ADMIN_ROUTES,
]
