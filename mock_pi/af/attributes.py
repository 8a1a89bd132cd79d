"""AF attributes: built per element or event frame on first use (then cached), with PI Point data references
drawn round-robin from the catalog's point families, captured event-frame values and seeded static values."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from mock_pi import webid
from mock_pi.af.objects import US_PER_DAY, Attribute, Element, ElementTemplate, EventFrame
from mock_pi.af.templates import UNIT_NAMES, AttrSpec

if TYPE_CHECKING:
    from mock_pi.af.objects import AssetServer
    from mock_pi.catalog import Catalog, Point


class AttributesMixin:
    """The attribute side of `AFModel` (which provides the state below, `attribute()` and `end_us()`)."""

    seed: int
    server: AssetServer
    catalog: Catalog
    _lock: threading.RLock
    _pools: dict[str, list[int]]

    if TYPE_CHECKING:

        def attribute(self, web_id: str) -> Attribute | None: ...

        def end_us(self, ef: EventFrame, now_us: int) -> int | None: ...

    def attributes(self, owner: Element | EventFrame) -> list[Attribute]:
        """Top-level attributes of an element or event frame (built on first use, then cached)."""
        cached = owner.attributes_cache
        if cached is None:
            with self._lock:
                cached = owner.attributes_cache
                if cached is None:
                    cached = self._build_attributes(owner)
                    owner.attributes_cache = cached
        return cached

    def _build_attributes(self, owner: Element | EventFrame) -> list[Attribute]:
        rng = random.Random(f"{self.seed}/attributes/{owner.path}")
        slot = owner.pi_slot if isinstance(owner, Element) else 0
        owner_marker = "E" if isinstance(owner, Element) else "F"
        out: list[Attribute] = []

        def build(spec: AttrSpec, tmpl: ElementTemplate, parent: Attribute | None, path: str) -> Attribute:
            nonlocal slot
            point: Point | None = None
            if spec.pi_point in ("numeric", "digital"):
                point = self._pick_point(spec.family, slot)
                slot += 1
            elif spec.pi_point == "captured" and isinstance(owner, EventFrame):
                point = self._captured_point(owner.primary, spec.family)
            type_, qualifier = spec.type, spec.enum_set
            units_abbr = spec.units_abbr
            if point is not None:
                units_abbr = point.units
                if point.point_type == "Digital":
                    type_, qualifier = "EnumerationValue", point.digital_set_name
                else:
                    type_, qualifier = ("Int32" if point.point_type in ("Int16", "Int32") else "Double"), ""
            elif parent is not None and parent.point is not None and spec.categories == ("Limits",):
                units_abbr = parent.units_abbr
            guid = webid.stable_guid(self.seed, "attribute", path)
            attr = Attribute(
                owner,
                parent,
                spec,
                tmpl,
                spec.name,
                path,
                guid,
                webid.full(webid.ATTRIBUTE, [self.server.id, owner.id, guid], path, owner=owner_marker),
                type_,
                qualifier,
                spec.units
                if not units_abbr or units_abbr == spec.units_abbr
                else UNIT_NAMES.get(units_abbr, units_abbr),
                units_abbr,
                point,
                None if spec.pi_point else _static_value(spec, rng, owner),
            )
            attr.children = [build(c, tmpl, attr, f"{path}|{c.name}") for c in spec.children]
            return attr

        for tmpl in reversed(owner.template.lineage()):
            for spec in tmpl.own_specs:
                out.append(build(spec, tmpl, None, f"{owner.path}|{spec.name}"))
        return out

    def _captured_point(self, element: Element, family: str) -> Point | None:
        """The PI point an event-frame attribute captures: the primary element's first PI Point attribute of the
        wanted family (any numeric one when no family is asked), else a point of that family chosen by element."""
        for a in self.attributes(element):
            for x in (a, *a.descendants()):
                if (
                    x.point is not None
                    and x.spec.pi_point == "numeric"
                    and (not family or x.spec.family == family)
                ):
                    return x.point
        return self._pick_point(family, element.index)

    def _pick_point(self, family: str, slot: int) -> Point | None:
        """Round-robin over the catalog points of a family (any numeric point when the family has none)."""
        pool = self._pools.get(family) or self._pools.get("")
        if not pool:
            return None
        return self.catalog.point_at(pool[slot % len(pool)])

    def stream_point(self, web_id: str) -> Point | None:
        """The catalog point behind an attribute with a PI Point data reference (for /streams/{webId}/...)."""
        attr = self.attribute(web_id)
        return attr.point if attr is not None else None

    def stream_time_context(self, web_id: str, now_us: int) -> tuple[int, int] | None:
        """Default (start, end) of an event-frame attribute's stream (the frame's own range); None otherwise."""
        attr = self.attribute(web_id)
        if attr is None or not isinstance(attr.owner, EventFrame):
            return None
        ef = attr.owner
        end = self.end_us(ef, now_us)
        return ef.start_us, now_us if end is None else end

    def all_attributes(
        self, owner: Element | EventFrame | Attribute, *, full_hierarchy: bool
    ) -> list[Attribute]:
        """Attributes of an element or event frame (child attributes of an attribute); with full_hierarchy,
        child attributes follow their parent (pre-order)."""
        top = owner.children if isinstance(owner, Attribute) else self.attributes(owner)
        if not full_hierarchy:
            return list(top)
        out: list[Attribute] = []
        for a in top:
            out.append(a)
            out.extend(a.descendants())
        return out


def point_pools(catalog: Catalog) -> dict[str, list[int]]:
    """Catalog point indices per family code, plus "" = every numeric point, in catalog order.

    Reads the catalog's vectorised family codes when present (100k tags in milliseconds); the hand-written points
    at the start carry their own family, so they are asked one by one.
    """
    from mock_pi.catalog import FAMILIES, SPECIAL_POINTS

    n = len(catalog)
    family_vec = getattr(catalog, "_family", None)
    codes: list[str]
    if family_vec is not None and len(family_vec) == n:
        names = np.array([f.code for f in FAMILIES], dtype=object)
        codes = list(names[np.asarray(family_vec, dtype=np.int64)])
        for i in range(min(n, len(SPECIAL_POINTS))):
            codes[i] = catalog.point_at(i).family
    else:
        codes = [catalog.point_at(i).family for i in range(n)]
    numeric_codes = {f.code for f in FAMILIES if f.point_type.startswith(("Float", "Int"))}
    pools: dict[str, list[int]] = {"": []}
    for i, code in enumerate(codes):
        pools.setdefault(code, []).append(i)
        if code in numeric_codes:
            pools[""].append(i)
    return pools


def _static_value(spec: AttrSpec, rng: random.Random, owner: Element | EventFrame) -> Any:
    kind, _, arg = spec.value.partition(":")
    if kind == "choice":
        return rng.choice(arg.split("|"))
    if kind == "range":
        lo, hi = (float(x) for x in arg.split(":"))
        return round(lo + rng.random() * (hi - lo), 3)
    if kind == "int":
        lo_i, hi_i = (int(x) for x in arg.split(":"))
        return rng.randint(lo_i, hi_i)
    if kind == "date":
        # Between 2005 and 2020, at midnight UTC.
        return (12_784 + rng.randrange(5_478)) * US_PER_DAY
    if kind == "bool":
        return rng.random() < float(arg)
    if kind == "serial":
        return f"{spec.name[:2].upper()}-{rng.randrange(10**6):06d}"
    if kind == "name":
        return owner.name
    if kind == "phase":
        return owner.ordinal if isinstance(owner, EventFrame) else 0
    if kind == "enum":
        code = rng.randrange(len(spec.enum))
        return (spec.enum[code], code + 1)
    return ""
