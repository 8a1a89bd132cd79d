"""`AFModel`: the emulator's Asset Framework: one asset server, its databases, element and event-frame templates, a
deep element hierarchy with attributes (PI Point data references onto catalog points, static values), and event
frames per UTC day; lookups by WebID (Full or PathOnly) and by AF path.

Everything is a pure function of config.seed and the scale settings. Elements are built eagerly at start-up (cheap,
`hierarchy.py`); attributes are built per element on first use (`attributes.py`) and event frames per (database, UTC
day) on first use (`eventframes.py`), then cached. The generated content itself is data in `templates.py`.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mock_pi import webid
from mock_pi.af.attributes import AttributesMixin, point_pools
from mock_pi.af.eventframes import EventFramesMixin
from mock_pi.af.hierarchy import HierarchyBuilder
from mock_pi.af.objects import (
    SERVER_NAME,
    AssetServer,
    Attribute,
    Database,
    Element,
    ElementTemplate,
    EventFrame,
    wildcard,
)

if TYPE_CHECKING:
    from mock_pi.catalog import Catalog
    from mock_pi.config import EmulatorConfig


def _decode_path(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _norm(path: str) -> str:
    """Lookup key for an AF path: AF paths are case-insensitive; WebIDs carry them upper-cased without the `\\\\`."""
    return path.strip().lstrip("\\").upper()


_EF_SEGMENT = re.compile(r"\\EventFrames\[([^\]]*)\]", re.IGNORECASE)


class AFModel(AttributesMixin, EventFramesMixin):
    """The AF side of the emulator. Built once by EmulatorState; thread-safe for concurrent readers."""

    def __init__(self, config: EmulatorConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.seed = int(config.seed)
        self.elements_per_db = max(1, int(getattr(config, "elements_per_db", 300)))
        self.event_frames_per_day = max(0, int(getattr(config, "event_frames_per_day", 40)))
        self._lock = threading.RLock()
        self._pools = point_pools(catalog)
        self._by_web_id: dict[str, Any] = {}
        self._by_path: dict[str, Any] = {}
        self._ef_days: OrderedDict[tuple[int, int], list[EventFrame]] = OrderedDict()
        self._ef_day_index: dict[tuple[int, int], dict[str, EventFrame]] = {}
        # Admin edits survive cache eviction: event-frame WebId → closed end time (µs).
        self._closed: dict[str, int] = {}
        guid = webid.stable_guid(self.seed, "assetserver", SERVER_NAME)
        self.server = AssetServer(
            SERVER_NAME, guid, webid.full(webid.ASSET_SERVER, [guid], SERVER_NAME), "\\\\" + SERVER_NAME
        )
        self._register(self.server)
        builder = HierarchyBuilder(self.seed, self.server, self.elements_per_db, self._register)
        slot = 0
        for i in range(max(0, int(getattr(config, "af_databases", 2)))):
            db, slot = builder.database(i, slot)
            self.server.databases.append(db)

    def _register(self, obj: Any) -> None:
        self._by_web_id[obj.web_id] = obj
        self._by_path[_norm(obj.path)] = obj

    # --------------------------------------------------------------------------------------- lookups

    @property
    def databases(self) -> list[Database]:
        return self.server.databases

    def database(self, web_id: str) -> Database | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Database) else None

    def element(self, web_id: str) -> Element | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Element) else None

    def template(self, web_id: str) -> ElementTemplate | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, ElementTemplate) else None

    def attribute(self, web_id: str) -> Attribute | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, Attribute) else None

    def event_frame(self, web_id: str) -> EventFrame | None:
        obj = self.resolve(web_id)
        return obj if isinstance(obj, EventFrame) else None

    def resolve(self, web_id: str) -> Any:
        """Any AF object by WebID: Full ('F1') as we issue them, or PathOnly ('P1') as clients may build them."""
        obj = self._by_web_id.get(web_id)
        if obj is not None:
            return obj
        if len(web_id) < 5 or web_id[1] != "1" or web_id[0] not in "FP":
            return None
        full = web_id[0] == "F"
        marker = web_id[2:4]
        if marker == webid.ATTRIBUTE:
            path = _decode_path(web_id[5 + (66 if full else 0) :])
            found = self.attribute_by_path(path) if path else None
        elif marker == webid.EVENT_FRAME:
            path = _decode_path(web_id[4 + (44 if full else 0) :])
            found = self.event_frame_by_path(path) if path else None
        elif not full:
            path = _decode_path(web_id[4:])
            found = self._by_path.get(_norm(path)) if path else None
        else:
            return None
        if found is None:
            return None
        # A Full WebID must match what we issued (GUIDs included); PathOnly only needs the right kind of object.
        if full and found.web_id != web_id:
            return None
        if (
            not full
            and webid.path_only(marker, found.path, owner=web_id[4] if marker == webid.ATTRIBUTE else "")
            != web_id
        ):
            return None
        return found

    def by_path(self, path: str) -> Any:
        """Server, database, template, element, attribute (`E|A|B`) or event frame by its AF path."""
        if "|" in path:
            return self.attribute_by_path(path)
        if _EF_SEGMENT.search(path):
            return self.event_frame_by_path(path)
        return self._by_path.get(_norm(path))

    def attribute_by_path(self, path: str) -> Attribute | None:
        owner_path, _, rest = path.partition("|")
        if not rest:
            return None
        owner: Element | EventFrame | None
        if _EF_SEGMENT.search(owner_path):
            owner = self.event_frame_by_path(owner_path)
        else:
            found = self._by_path.get(_norm(owner_path))
            owner = found if isinstance(found, Element) else None
        if owner is None:
            return None
        attrs = self.attributes(owner)
        attr: Attribute | None = None
        for part in rest.split("|"):
            low = part.lower()
            attr = next((a for a in attrs if a.name.lower() == low), None)
            if attr is None:
                return None
            attrs = attr.children
        return attr

    def event_frame_by_path(self, path: str) -> EventFrame | None:
        m = _EF_SEGMENT.search(path)
        if m is None:
            return None
        db = self._by_path.get(_norm(path[: m.start()]))
        if not isinstance(db, Database):
            return None
        names = [seg.group(1) for seg in _EF_SEGMENT.finditer(path)]
        # The whole path must be EventFrames[...] segments after the database.
        if "".join(f"\\EventFrames[{n}]" for n in names).upper() != path[m.start() :].upper():
            return None
        top = self._frame_by_name(db, names[0])
        for child_name in names[1:]:
            if top is None:
                return None
            low = child_name.lower()
            top = next((c for c in top.children if c.name.lower() == low), None)
        return top

    def element_by_path(self, path: str) -> Element | None:
        found = self._by_path.get(_norm(path))
        return found if isinstance(found, Element) else None

    # --------------------------------------------------------------------------------------- attributes

    # --------------------------------------------------------------------------------------- elements

    def find_elements(
        self,
        scope: Iterable[Element],
        *,
        name_filter: str | None = None,
        description_filter: str | None = None,
        template_name: str | None = None,
        category_name: str | None = None,
    ) -> list[Element]:
        name_re = wildcard(name_filter)
        desc_re = wildcard(description_filter)
        cat = category_name.lower() if category_name else None
        out = []
        for el in scope:
            if name_re is not None and not name_re.match(el.name):
                continue
            if desc_re is not None and not desc_re.match(el.description):
                continue
            if template_name and not el.template.is_a(template_name):
                continue
            if cat is not None and cat not in (c.lower() for c in el.categories):
                continue
            out.append(el)
        return out
