"""The whole generated AF model for seed 42 hashes to one known value: moving code around (modules, named template
records) must not change a single name, WebID, value or event frame. Change FINGERPRINT only for an intended change
of the generated model, and say so in the commit."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

from mock_pi import webid
from mock_pi.af import AFModel, Element, EventFrame, day_of
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from mock_pi.pitime import parse_time

FINGERPRINT = "26fd91317e39a43c3d920fcf9d3865b04f4761467afb95d59fca55724f7e33d7"
NOW = parse_time("2024-05-01T12:00:00Z", 0)
DAYS = range(day_of(NOW) - 3, day_of(NOW) + 1)


def _spec(spec: Any) -> Any:
    """Attribute templates as nested (field, value) pairs, whatever class carries them."""
    if dataclasses.is_dataclass(spec):
        return [(f.name, _spec(getattr(spec, f.name))) for f in dataclasses.fields(spec)]
    if isinstance(spec, tuple):
        return [_spec(s) for s in spec]
    return spec


def _attributes(af: AFModel, owner: Element | EventFrame) -> Iterator[tuple[Any, ...]]:
    marker = "F" if isinstance(owner, EventFrame) else "E"
    for a in af.all_attributes(owner, full_hierarchy=True):
        yield (
            a.name, a.path, str(a.id), a.web_id, a.type, a.type_qualifier, a.units_name, a.units_abbr,
            a.point.web_id if a.point else None, a.value, a.config_string, a.template.name, a.spec.name,
            a.parent.web_id if a.parent else None, af.resolve(a.web_id) is a,
            af.resolve(webid.path_only(webid.ATTRIBUTE, a.path, owner=marker)) is a,
        )  # fmt: skip


def _frame(af: AFModel, ef: EventFrame) -> Iterator[tuple[Any, ...]]:
    yield (
        ef.name, ef.path, ef.template.name, str(ef.id), ef.web_id, ef.start_us, ef.planned_end_us, ef.severity,
        [r.path for r in ef.refs], ef.ordinal, ef.parent.web_id if ef.parent else None, af.end_us(ef, NOW),
        af.resolve(ef.web_id) is ef, af.by_path(ef.path) is ef,
    )  # fmt: skip
    yield from _attributes(af, ef)
    for child in ef.children:
        yield from _frame(af, child)


def model_rows(af: AFModel) -> Iterator[Any]:
    s = af.server
    yield (s.name, str(s.id), s.web_id, s.path)
    for db in af.databases:
        yield (db.index, db.name, db.description, str(db.id), db.web_id, db.path, af.by_path(db.path) is db)
        for t in db.templates.values():
            yield (
                t.name, t.description, t.instance_type, t.base.name if t.base else None, t.categories,
                str(t.id), t.web_id, t.path, t.severity, t.can_be_acknowledged, _spec(t.specs),
                af.template(t.web_id) is t,
            )  # fmt: skip
        yield [r.web_id for r in db.roots], [e.web_id for e in db.equipment]
        for el in db.elements:
            yield (
                el.index, el.name, el.description, el.path, el.template.name, str(el.id), el.web_id, el.pi_slot,
                el.parent.web_id if el.parent else None, [c.web_id for c in el.children], el.categories,
                af.element(el.web_id) is el, af.element_by_path(el.path.lower()) is el,
            )  # fmt: skip
            yield from _attributes(af, el)
        yield [e.web_id for e in af.find_elements(db.elements, name_filter="P*", template_name="Equipment")]
        yield [
            e.web_id for e in af.find_elements(db.elements, category_name="energy", description_filter="*a*")
        ]
        for day in DAYS:
            for ef in af.frames_for_day(db, day):
                yield from _frame(af, ef)
        yield [f.web_id for f in af.frames_overlapping(db, NOW - 6 * 3_600_000_000, NOW, NOW)]
        forward = af.frames_walk(db, NOW - 86_400_000_000, NOW, forward=True)
        backward = af.frames_walk(db, NOW, NOW, forward=False)
        yield [next(forward).web_id for _ in range(50)], [next(backward).web_id for _ in range(50)]


def fingerprint(af: AFModel) -> str:
    digest = hashlib.sha256()
    for row in model_rows(af):
        digest.update(repr(row).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def test_the_generated_af_model_is_unchanged() -> None:
    cfg = EmulatorConfig(seed=42, tags=500)
    af = AFModel(cfg, Catalog(cfg.seed, cfg.tags, cfg.data_servers))
    assert fingerprint(af) == FINGERPRINT
