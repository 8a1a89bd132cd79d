"""OSIPI_CONNECTIONS_DIR: the code location loads PIConnection YAML files from a folder outside the package, as
`make demo` does with scripts/demo_connections (its site_b beside the environment connection)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from osipi_dagster.components.folder import load_connections
from osipi_dagster.components.pi_connection import PIConnectionError
from osipi_dagster.definitions import defs as load_defs
from osipi_dagster.lib.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONNECTIONS = ROOT / "scripts" / "demo_connections"


def groups(defs: dg.Definitions) -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    out: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        out.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    return out


def test_demo_site_b_loads_beside_the_environment_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OSIPI_CONNECTIONS_DIR", str(DEMO_CONNECTIONS))
    monkeypatch.setenv("SITE_B_URL", "http://127.0.0.1:9/piwebapi")
    monkeypatch.setenv("OSIPI_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("PI_WEB_API_URL", "http://127.0.0.1:8/piwebapi")
    defs = load_defs()
    dg.Definitions.validate_loadable(defs)  # what `dg check defs` asks of the code location
    found = groups(defs)
    core = {
        "pi_points",
        "pi_timeseries",
        "af_elements",
        "af_attributes",
        "event_frames",
        "event_frame_attributes",
    }
    assert {f"pi/{name}" for name in core} <= found["pi"]
    assert {f"site_b/{name}" for name in core} <= found["site_b"]
    for job in ("site_b__pi_ingest_job", "site_b__pi_event_frames_job", "pi_ingest_job"):
        defs.resolve_job_def(job)

    [site_b] = load_connections(DEMO_CONNECTIONS)
    assert site_b.pi_resource().pi_web_api_url == "http://127.0.0.1:9/piwebapi"
    assert site_b.pi_resource().af_databases == ["\\\\PIAF01\\Mining Site"]
    # One lake root (the environment's), this site's tables in its own sub-path.
    assert site_b.lake_resource().root_uri == f"{tmp_path / 'lake'}/site_b"
    assert defs.metadata["osipi/connection/site_b/pool_limit"].value == 2


def test_without_the_variable_only_the_environment_connection_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSIPI_CONNECTIONS_DIR", raising=False)
    assert "site_b" not in groups(load_defs())


def test_a_missing_folder_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OSIPI_CONNECTIONS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SettingsError, match=r"OSIPI_CONNECTIONS_DIR='.*nowhere' is not a directory"):
        load_defs()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "type: dagster.DefsFolderComponent\n",
            r"type is 'dagster.DefsFolderComponent', expected osipi_dagster",
        ),
        ("type: osipi_dagster.PIConnection\nattributes: [1]\n", "attributes must be a mapping"),
        ("type: osipi_dagster.PIConnection\nattrs: {}\n", r"unknown top-level keys \['attrs'\]"),
        ("type: osipi_dagster.PIConnection\nattributes: {pi_web_api_url: 'x'\n", "not valid YAML"),
        (
            "type: osipi_dagster.PIConnection\nattributes: {pi_web_api_url: http://pi/piwebapi, tag_filtr: x}\n",
            "tag_filtr: unknown field",
        ),
    ],
)
def test_a_wrong_file_names_itself_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "plant").mkdir()
    (tmp_path / "plant" / "defs.yaml").write_text(text)
    with pytest.raises(PIConnectionError, match=message) as err:
        load_connections(tmp_path)
    assert "plant" in str(err.value)
