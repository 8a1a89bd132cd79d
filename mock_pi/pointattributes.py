"""The PI point attribute table of a classic point: what /points/{webId}/attributes lists and point queries filter on.

Each attribute has a kind for point queries ('text', 'number' or 'time'); time attributes hold UTC µs here and are
listed as ISO 8601 strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_pi.catalog import CREATED_US, Point
from mock_pi.pitime import format_us

_OWNER, _GROUP = "piadmin", "piadmins"
_SECURITY = "piadmins: A(r,w) | piusers: A(r) | PIWorld: A(r)"


def _location4(point: Point) -> int:
    # Interfaces keep their scan class in location4 (1 when the catalog models no scan classes).
    return int(getattr(point, "scan_class", 0) or 1)


def _compdev(point: Point) -> float:
    deadband = float(getattr(point, "deadband", 0.0) or 0.0)
    return round(deadband or point.span * 0.002, 6)


ATTRIBUTES: tuple[tuple[str, str, Callable[[Point], Any]], ...] = (
    ("archiving", "number", lambda p: 1),
    ("changedate", "time", lambda p: CREATED_US),
    ("changer", "text", lambda p: _OWNER),
    ("compdev", "number", _compdev),
    ("compdevpercent", "number", lambda p: 0.2),
    ("compmax", "number", lambda p: 28800),
    ("compmin", "number", lambda p: 0),
    ("compressing", "number", lambda p: 1),
    ("convers", "number", lambda p: 1),
    ("creationdate", "time", lambda p: CREATED_US),
    ("creator", "text", lambda p: _OWNER),
    ("dataaccess", "text", lambda p: "o:rw g:r w:r"),
    ("datagroup", "text", lambda p: _GROUP),
    ("dataowner", "text", lambda p: _OWNER),
    ("datasecurity", "text", lambda p: _SECURITY),
    ("descriptor", "text", lambda p: p.descriptor),
    ("digitalset", "text", lambda p: p.digital_set_name),
    ("displaydigits", "number", lambda p: p.display_digits),
    ("engunits", "text", lambda p: p.units),
    ("excdev", "number", lambda p: round(p.span * 0.001, 6)),
    ("excdevpercent", "number", lambda p: 0.1),
    ("excmax", "number", lambda p: 600),
    ("excmin", "number", lambda p: 0),
    ("exdesc", "text", lambda p: ""),
    ("filtercode", "number", lambda p: 0),
    ("future", "number", lambda p: int(p.future)),
    ("instrumenttag", "text", lambda p: p.name),
    ("location1", "number", lambda p: 1),
    ("location2", "number", lambda p: 0),
    ("location3", "number", lambda p: 0),
    ("location4", "number", _location4),
    ("location5", "number", lambda p: 0),
    ("pointid", "number", lambda p: p.id),
    ("pointsource", "text", lambda p: p.point_source),
    ("pointtype", "text", lambda p: p.point_type),
    ("ptaccess", "text", lambda p: "o:rw g:r w:r"),
    ("ptclassid", "number", lambda p: 3),
    ("ptclassname", "text", lambda p: "classic"),
    ("ptclassrev", "number", lambda p: 6),
    ("ptgroup", "text", lambda p: _GROUP),
    ("ptowner", "text", lambda p: _OWNER),
    ("ptsecurity", "text", lambda p: _SECURITY),
    ("recno", "number", lambda p: p.id),
    ("scan", "number", lambda p: 1),
    ("shutdown", "number", lambda p: 1),
    ("sourcetag", "text", lambda p: ""),
    ("span", "number", lambda p: p.span),
    ("squareroot", "number", lambda p: 0),
    ("srcptid", "number", lambda p: 0),
    ("step", "number", lambda p: int(p.step)),
    ("tag", "text", lambda p: p.name),
    ("totalcode", "number", lambda p: 0),
    ("typicalvalue", "number", lambda p: p.zero + p.span / 2),
    ("userint1", "number", lambda p: 0),
    ("userint2", "number", lambda p: 0),
    ("userreal1", "number", lambda p: 0),
    ("userreal2", "number", lambda p: 0),
    ("zero", "number", lambda p: p.zero),
)
KINDS: dict[str, str] = {name: kind for name, kind, _ in ATTRIBUTES}
GETTERS: dict[str, Callable[[Point], Any]] = {name: get for name, _, get in ATTRIBUTES}


def point_attributes(point: Point) -> list[tuple[str, Any]]:
    """(name, value) in PI's alphabetical order, times as ISO 8601 strings."""
    return [(name, format_us(get(point)) if kind == "time" else get(point)) for name, kind, get in ATTRIBUTES]
