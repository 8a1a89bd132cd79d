"""`osipi browse`: PI point queries find tags with odd names; the AF walk pages a 1,220-child element."""

from __future__ import annotations

from osipi_dagster_tests.cli.conftest import WIDE_ELEMENT, osipi
from osipi_dagster_tests.emulator import Emulator


def tags_of(emu: Emulator, query: str, **env: str) -> list[dict]:
    run = osipi("browse", "tags", query, "--json", PI_WEB_API_URL=emu.api, **env)
    assert run.code == 0, run.text
    return run.json()["tags"]


def test_tags_with_spaces_parentheses_plus_and_ampersand(wide_emulator: Emulator) -> None:
    assert [t["name"] for t in tags_of(wide_emulator, 'name:"Tank 12 (North) Level"')] == [
        "Tank 12 (North) Level"
    ]
    assert [t["name"] for t in tags_of(wide_emulator, "Batch\\ ID*")] == ["Batch ID R-101+102 & Spare"]
    assert [t["name"] for t in tags_of(wide_emulator, "name:'Flow Line 2/B #7 %'")] == ["Flow Line 2/B #7 %"]
    sinusoid = tags_of(wide_emulator, "name:SINU*")
    assert [(t["name"], t["point_type"]) for t in sinusoid] == [("SINUSOID", "Float64")]
    assert sinusoid[0]["path"].endswith("\\SINUSOID")


def test_tags_marked_with_what_the_filter_selects(wide_emulator: Emulator) -> None:
    run = osipi("browse", "tags", "name:T*", PI_WEB_API_URL=wide_emulator.api, PI_TAG_FILTER="Tank*")
    assert run.code == 0, run.text
    lines = {line.split("  ")[1].strip(): line for line in run.out.splitlines() if line.startswith("PISRV")}
    assert " yes " in lines["Tank 12 (North) Level"]
    assert " no " in lines["Température #3/A %"]
    report = osipi(
        "browse", "tags", "name:T*", "--json", PI_WEB_API_URL=wide_emulator.api, PI_TAG_FILTER="Tank*"
    ).json()
    picked = sorted(t["name"] for t in report["tags"] if t["selected"])
    assert picked and all(name.lower().startswith("tank") for name in picked)
    assert report["selected"] == len(picked) < report["count"]
    assert (
        f"{report['count']} tags match 'name:T*'; the connection's tag filter picks {len(picked)}" in run.out
    )


def test_bad_query_is_a_clear_error(wide_emulator: Emulator) -> None:
    run = osipi("browse", "tags", "nosuchattr:1", PI_WEB_API_URL=wide_emulator.api)
    assert run.code == 1
    assert "returned 400" in run.err
    assert "Unknown PI point attribute 'nosuchattr'" in run.err


def test_af_walks_a_1220_child_element(wide_emulator: Emulator) -> None:
    run = osipi("browse", "af", WIDE_ELEMENT, "--json", PI_WEB_API_URL=wide_emulator.api)
    assert run.code == 0, run.text
    (node,) = run.json()["nodes"]
    names = [c["name"] for c in node["children"]]
    assert node["child_count"] == 1220
    assert names == [f"FQ-{i:04d}" for i in range(1, 1221)]
    assert {c["template"] for c in node["children"]} == {"Meter"}
    text = osipi("browse", "af", WIDE_ELEMENT, PI_WEB_API_URL=wide_emulator.api)
    assert text.code == 0
    assert "Custody Metering element Collection 1220 yes" in text.flat
    assert "FQ-1220 element Meter yes" in text.flat


def test_af_databases_and_selection(wide_emulator: Emulator) -> None:
    plant = "\\\\PIAF01\\Plant Operations"
    run = osipi("browse", "af", "--json", PI_WEB_API_URL=wide_emulator.api, PI_AF_DATABASES=plant)
    assert run.code == 0, run.text
    nodes = run.json()["nodes"]
    assert [(n["path"], n["selected"]) for n in nodes] == [(plant, True), ("\\\\PIAF01\\Mining Site", False)]
    assert [c["name"] for c in nodes[0]["children"]] == ["Contoso Chemicals"]
    deep = osipi("browse", "af", plant, "--depth", "2", "--json", PI_WEB_API_URL=wide_emulator.api).json()
    (db,) = deep["nodes"]
    (enterprise,) = db["children"]
    assert "Custody Metering" in [c["name"] for c in enterprise["children"]]
    assert all(c["children"] == [] for c in enterprise["children"])


def test_af_element_attributes(wide_emulator: Emulator) -> None:
    run = osipi("browse", "af", WIDE_ELEMENT + "\\FQ-0001", "--depth", "0", PI_WEB_API_URL=wide_emulator.api)
    assert run.code == 0, run.text
    assert "attributes of " + WIDE_ELEMENT + "\\FQ-0001:" in run.out
    assert "PI Point" in run.out
