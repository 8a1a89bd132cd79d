"""Building the AF hierarchy: the asset server's databases, their element and event-frame templates (from
`templates.py`) and the element tree of each database's profile, deterministic in the seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from mock_pi import webid
from mock_pi.af.objects import AssetServer, Database, Element, ElementTemplate
from mock_pi.af.templates import (
    ELEMENT_TEMPLATES,
    EVENT_FRAME_TEMPLATES,
    PROFILES,
    AttrSpec,
    Profile,
)


class HierarchyBuilder:
    """Builds databases of one asset server; every built object is handed to `register` (the model's indexes)."""

    def __init__(
        self, seed: int, server: AssetServer, elements_per_db: int, register: Callable[[Any], None]
    ) -> None:
        self.seed = seed
        self.server = server
        self.elements_per_db = elements_per_db
        self._register = register

    def database(self, index: int, slot: int) -> tuple[Database, int]:
        """Database `index` (profiles in turn), its templates and elements; PI point slots from `slot` on, and the
        next free slot."""
        profile = PROFILES[index % len(PROFILES)]
        name = profile.name if index < len(PROFILES) else f"{profile.name} {index // len(PROFILES) + 1}"
        path = f"{self.server.path}\\{name}"
        guid = webid.stable_guid(self.seed, "database", name)
        db = Database(
            self.server,
            index,
            name,
            profile.description,
            guid,
            webid.full(webid.ASSET_DATABASE, [self.server.id, guid], path),
            path,
        )
        self._register(db)
        self._templates(db)
        return db, self._elements(db, profile, slot)

    def _template(self, db: Database, name: str, description: str, instance_type: str, base: str | None,
                  categories: tuple[str, ...], specs: tuple[AttrSpec, ...], severity: str = "None",
                  can_ack: bool = False) -> ElementTemplate:  # fmt: skip
        path = f"{db.path}\\ElementTemplates[{name}]"
        guid = webid.stable_guid(self.seed, "template", db.name, name)
        t = ElementTemplate(
            db,
            name,
            description,
            instance_type,
            db.templates[base.lower()] if base else None,
            categories,
            specs,
            guid,
            webid.full(webid.ELEMENT_TEMPLATE, [self.server.id, guid], path),
            path,
            severity,
            can_ack,
        )
        db.templates[name.lower()] = t
        self._register(t)
        return t

    def _templates(self, db: Database) -> None:
        for e in ELEMENT_TEMPLATES:
            self._template(db, e.name, e.description, "Element", e.base, e.categories, e.attributes)
        for f in EVENT_FRAME_TEMPLATES:
            self._template(db, f.name, f.description, "EventFrame", None, f.categories, f.attributes, f.severity,
                           f.can_be_acknowledged)  # fmt: skip

    def _elements(self, db: Database, p: Profile, slot: int) -> int:
        """The element tree of `db` shaped by profile `p`; returns the next free PI point slot."""
        rng = random.Random(f"{self.seed}/hierarchy/{db.name}")
        budget = self.elements_per_db
        # One in five elements sits flat under a single collection element, so a large database has one parent
        # with well over 1,200 children (clients must follow paging links); the rest form the deep tree.
        n_collection = budget // 5
        tree_budget = max(0, budget - n_collection - 2)
        counter = [0, slot]
        prefixes = {e.template: e.tag_prefix for e in p.equipment}

        def add(parent: Element | None, name: str, template: str, description: str) -> Element:
            t = db.templates[template.lower()]
            path = f"{parent.path if parent else db.path}\\{name}"
            guid = webid.stable_guid(self.seed, "element", path)
            el = Element(
                db,
                parent,
                name,
                description,
                path,
                t,
                guid,
                webid.full(webid.ELEMENT, [self.server.id, guid], path),
                counter[0],
                counter[1],
            )
            counter[0] += 1
            counter[1] += sum(_count_pi(s) for s in t.specs)
            (parent.children if parent else db.roots).append(el)
            db.elements.append(el)
            self._register(el)
            return el

        root = add(None, p.root, "Enterprise", f"{p.root} enterprise")
        used = 1
        site_no = 0
        while True:
            plan = self._plan_site(rng, p)
            size = 1 + len(p.areas) + sum(1 + sum(1 + (t in p.with_motor) for t in unit) for unit in plan)
            if site_no > 0 and used + size > tree_budget + 1:
                break
            base_name = p.sites[site_no % len(p.sites)]
            site_name = base_name if site_no < len(p.sites) else f"{base_name} {site_no // len(p.sites) + 1}"
            site = add(root, site_name, "Site", f"{site_name} site")
            units_per_area = len(plan) // len(p.areas)
            for a_i, area_name in enumerate(p.areas):
                area = add(site, area_name, "Area", f"{area_name} area, {site_name}")
                for u_i in range(units_per_area):
                    unit_no = (a_i + 1) * 100 + u_i + 1
                    unit = add(
                        area, f"{p.unit_prefix} {unit_no}", "Unit", f"{p.unit_prefix} {unit_no}, {site_name}"
                    )
                    for e_i, tmpl in enumerate(plan[a_i * units_per_area + u_i]):
                        prefix = prefixes[tmpl]
                        eq_name = f"{prefix}-{unit_no}{e_i + 1:02d}"
                        eq = add(unit, eq_name, tmpl, f"{db.templates[tmpl.lower()].description} {eq_name}")
                        db.equipment.append(eq)
                        if tmpl in p.with_motor:
                            add(eq, "Motor", "Motor", f"Drive motor of {eq_name}")
            used += size
            site_no += 1
        if n_collection:
            coll = add(root, p.collection, "Collection", f"{p.collection} ({n_collection} assets)")
            width = max(4, len(str(n_collection)))
            t = db.templates[p.collection_template.lower()]
            for i in range(n_collection):
                name = f"{p.collection_prefix}-{i + 1:0{width}d}"
                db.equipment.append(add(coll, name, p.collection_template, f"{t.description} {name}"))
        return counter[1]

    @staticmethod
    def _plan_site(rng: random.Random, p: Profile) -> list[list[str]]:
        """Equipment templates per unit for one site: 3 units per area, 3-5 equipment per unit."""
        kinds = [e.template for e in p.equipment]
        return [[rng.choice(kinds) for _ in range(rng.randint(3, 5))] for _ in range(3 * len(p.areas))]


def _count_pi(spec: AttrSpec) -> int:
    return (1 if spec.pi_point in ("numeric", "digital") else 0) + sum(_count_pi(c) for c in spec.children)
