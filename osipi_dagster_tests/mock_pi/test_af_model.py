"""In-process tests of mock_pi's AF model: hierarchy shape, scale, determinism, WebID resolution and event-frame
generation (no HTTP; the HTTP contract is covered by test_af_http.py and test_af_eventframes.py)."""

from __future__ import annotations

import pytest

from mock_pi import webid
from mock_pi.af import MAX_EF_DURATION_US, US_PER_DAY, AFModel, Element, day_of
from mock_pi.catalog import Catalog
from mock_pi.config import EmulatorConfig
from mock_pi.pitime import parse_time

MAY_1 = day_of(parse_time("2024-05-01T00:00:00Z", 0))


def build(**overrides: object) -> AFModel:
    cfg = EmulatorConfig(**{"seed": 42, "tags": 500, **overrides})  # type: ignore[arg-type]
    return AFModel(cfg, Catalog(cfg.seed, cfg.tags, cfg.data_servers))


def depth(el: Element) -> int:
    d = 1
    while el.parent is not None:
        el, d = el.parent, d + 1
    return d


def test_default_hierarchy_shape() -> None:
    af = build()
    assert af.server.path == "\\\\PIAF01"
    assert [db.name for db in af.databases] == ["Plant Operations", "Mining Site"]
    plant = af.databases[0]
    assert [r.name for r in plant.roots] == ["Contoso Chemicals"]
    # Moderate by default (fast tests), deep (Enterprise/Site/Area/Unit/Equipment/Motor) and with one flat collection.
    assert 200 <= len(plant.elements) <= 300
    assert max(depth(e) for e in plant.elements) == 6
    site = plant.roots[0].children[0]
    assert (site.name, site.template.name) == ("Houston", "Site")
    assert [a.name for a in site.children] == ["Reaction", "Separation", "Utilities"]
    pump = next(e for e in plant.elements if e.template.name == "Pump")
    assert pump.template.base is not None and pump.template.base.name == "Equipment"
    assert [c.name for c in pump.children] == ["Motor"]
    metering = next(e for e in plant.roots[0].children if e.name == "Custody Metering")
    assert len(metering.children) == 60 and metering.children[0].name == "FQ-0001"


def test_scale_10000_elements_builds_the_hierarchy_only_with_a_wide_parent() -> None:
    af = build(elements_per_db=10_000)
    for db in af.databases:
        assert 9_500 <= len(db.elements) <= 10_000
        widest = max(db.elements, key=lambda e: len(e.children))
        assert len(widest.children) == 2_000
        # What keeps the build cheap at scale: one object per element, attributes wait for first use.
        assert all(e.attributes_cache is None for e in db.elements)
    assert not af._ef_days  # and no event frame is generated before a day is asked for
    pump = next(e for e in af.databases[0].elements if e.template.name == "Pump")
    assert af.attributes(pump) and pump.attributes_cache is not None
    assert sum(e.attributes_cache is not None for db in af.databases for e in db.elements) == 1


def test_deterministic_from_seed() -> None:
    a, b, c = build(), build(), build(seed=7)
    assert [e.web_id for e in a.databases[0].elements] == [e.web_id for e in b.databases[0].elements]
    el_a = a.databases[0].elements[40]
    el_b = b.databases[0].elements[40]
    assert [(x.web_id, x.config_string, x.value) for x in a.all_attributes(el_a, full_hierarchy=True)] == [
        (x.web_id, x.config_string, x.value) for x in b.all_attributes(el_b, full_hierarchy=True)
    ]
    assert a.databases[0].elements[0].web_id != c.databases[0].elements[0].web_id
    frames_a = [(f.name, f.start_us, f.planned_end_us) for f in a.frames_for_day(a.databases[0], MAY_1)]
    frames_b = [(f.name, f.start_us, f.planned_end_us) for f in b.frames_for_day(b.databases[0], MAY_1)]
    assert frames_a == frames_b and len(frames_a) == 40


def test_pi_point_attributes_reference_catalog_points() -> None:
    af = build()
    catalog = af.catalog
    pumps = [e for e in af.databases[0].elements if e.template.name == "Pump"]
    seen = set()
    for pump in pumps:
        flow = next(a for a in af.attributes(pump) if a.name == "Flow")
        assert flow.point is not None and flow.point.family == "FIC"
        path, _, uom = flow.config_string.partition(";UOM=")
        assert catalog.point_by_path(path) is flow.point
        assert uom == flow.point.units == flow.units_abbr == "m3/h"
        assert af.stream_point(flow.web_id) is flow.point
        seen.add(flow.point.name)
    # Tags are spread over the elements, not all pointing at one tag.
    assert len(seen) > len(pumps) // 2


def test_web_ids_resolve_full_and_path_only() -> None:
    af = build()
    el = af.databases[1].elements[25]
    attr = af.all_attributes(el, full_hierarchy=True)[-1]
    assert af.resolve(el.web_id) is el
    assert af.resolve(attr.web_id) is attr
    assert af.resolve(webid.path_only(webid.ELEMENT, el.path)) is el
    assert af.resolve(webid.path_only(webid.ATTRIBUTE, attr.path, owner="E")) is attr
    # Same path, forged GUIDs: not ours.
    forged = webid.full(webid.ELEMENT, [af.server.id, webid.stable_guid(1, "x")], el.path.lstrip("\\"))
    assert af.resolve(forged) is None
    assert af.resolve("F1EmNOTAWEBID") is None
    assert af.stream_point(el.web_id) is None


def test_event_frames_on_demand_and_by_web_id_after_eviction() -> None:
    af = build(event_frames_per_day=10_000)
    db = af.databases[0]
    frames = af.frames_for_day(db, MAY_1)
    assert len(frames) == 10_000
    # Generated once for the day asked for, then served from the cache; frame attributes wait for first use.
    assert af.frames_for_day(db, MAY_1) is frames and list(af._ef_days) == [(db.index, MAY_1)]
    assert all(f.attributes_cache is None for f in frames)
    assert all(MAY_1 * US_PER_DAY <= f.start_us < (MAY_1 + 1) * US_PER_DAY for f in frames)
    assert all(0 < f.planned_end_us - f.start_us <= MAX_EF_DURATION_US for f in frames)
    batch = next(f for f in frames if f.template.name == "Batch")
    assert [c.name for c in batch.children] == ["Charge", "React", "Discharge"]
    assert (
        batch.children[0].start_us == batch.start_us
        and batch.children[-1].planned_end_us == batch.planned_end_us
    )
    assert batch.refs[1] is batch.refs[0].parent  # primary equipment, then its unit
    # A frame looked up by WebId regenerates its day (cache evicted) and is the same frame.
    af._ef_days.clear()
    af._ef_day_index.clear()
    again = af.event_frame(batch.children[1].web_id)
    assert (
        again is not None
        and again.path == batch.children[1].path
        and again.start_us == batch.children[1].start_us
    )


def test_close_event_frame_rules() -> None:
    af = build()
    db = af.databases[0]
    now = parse_time("2024-05-01T12:00:00Z", 0)
    open_frames = [f for f in af.frames_for_day(db, MAY_1) if f.start_us <= now < f.planned_end_us]
    assert open_frames, "the default scale leaves some frames in progress at noon"
    ef = open_frames[0]
    assert af.end_us(ef, now) is None
    with pytest.raises(ValueError, match="before the event frame's StartTime"):
        af.close_event_frame(ef, ef.start_us - 1, now)
    af.close_event_frame(ef, now - 1_000_000, now)
    assert af.end_us(ef, now) == now - 1_000_000
    with pytest.raises(ValueError, match="not in progress"):
        af.close_event_frame(ef, now, now)
