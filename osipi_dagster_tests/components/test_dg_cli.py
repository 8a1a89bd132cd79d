"""`PIConnection` through the real `dg` CLI (subprocesses) in a temporary copy of the project, so the repository's
defs folder is never touched: list the type, scaffold two connections, check and list their definitions, and fail
on a broken defs.yaml naming the field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DG = str(Path(sys.executable).parent / "dg")
TYPE = "osipi_dagster.PIConnection"
PI_VARS = ("PI_", "OSIPI_", "SITE_")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (pyproject + package) with two scaffolded connections, site_a and site_b."""
    root = tmp_path_factory.mktemp("dgproject")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        ROOT / "osipi_dagster", root / "osipi_dagster", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("site_a", "site_b"):
        done = dg(root, "scaffold", "defs", TYPE, name)
        assert done.returncode == 0, done.stdout + done.stderr
    return root


def dg(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PI_VARS)}
    # The copy's package, not the installed one, is what the code server imports.
    env["PYTHONPATH"] = str(root)
    env.update(extra)
    return subprocess.run(
        [DG, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
    )


URLS = {"SITE_A_URL": "http://127.0.0.1:9/piwebapi", "SITE_B_URL": "http://127.0.0.1:9/piwebapi"}


def test_dg_list_components_shows_the_type(project: Path) -> None:
    done = dg(project, "list", "components")
    assert done.returncode == 0, done.stderr
    assert TYPE in done.stdout


def test_scaffold_writes_a_commented_valid_template(project: Path) -> None:
    text = (project / "osipi_dagster/defs/site_b/defs.yaml").read_text()
    assert text.startswith(f"type: {TYPE}\n")
    assert '"{{ env.SITE_B_URL }}"' in text and "# password:" in text


def test_dg_check_defs_passes_and_list_defs_shows_both_prefixes(project: Path) -> None:
    done = dg(project, "check", "defs", **URLS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout
    listed = dg(project, "list", "defs", "--json", **URLS)
    assert listed.returncode == 0, listed.stderr
    for site in ("site_a", "site_b"):
        for table in ("pi_points", "af_elements", "af_attributes", "event_frames", "pi_timeseries"):
            assert f'"{site}/{table}"' in listed.stdout, (site, table)
        assert f"{site}__pi_ingest_job" in listed.stdout
    # The environment connection keeps today's keys alongside.
    assert '"pi/pi_timeseries"' in listed.stdout


@pytest.mark.parametrize(
    ("edit", "env", "named"),
    [
        # Dagster validates the schema first: "attributes.tag_filtr Additional properties are not allowed".
        ("  tag_filtr: '*'\n", URLS, "tag_filtr"),
        ("  pi_web_api_url: ftp://pi\n", URLS, "is not an http(s) URL"),
        ("", {"SITE_A_URL": URLS["SITE_A_URL"]}, "environment variable SITE_B_URL is not set"),
        ("  password: hunter2\n", URLS, "password: a literal secret is not allowed"),
    ],
    ids=["unknown-field", "bad-url", "missing-env-var", "literal-secret"],
)
def test_broken_yaml_fails_naming_the_field(
    project: Path, edit: str, env: dict[str, str], named: str
) -> None:
    path = project / "osipi_dagster/defs/site_b/defs.yaml"
    original = path.read_text()
    text = (
        original.replace('  pi_web_api_url: "{{ env.SITE_B_URL }}"', "  pi_web_api_url: ftp://pi")
        if ("ftp" in edit)
        else original + edit
    )
    path.write_text(text)
    try:
        done = dg(project, "check", "defs", **env)
    finally:
        path.write_text(original)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "site_b/defs.yaml" in output and named in output, output


@pytest.mark.parametrize("broken", ["site_a", "site_b"])
def test_dg_check_yaml_names_an_unknown_field_of_the_connection_checked(project: Path, broken: str) -> None:
    """`dg check yaml <folder>` validates that connection's defs.yaml against the schema (extra fields forbidden).

    Without a path, dagster-dg 1.13.27 validates one defs.yaml per component *type* (dagster_dg_core/check.py keys
    the files it collected by type, so each PIConnection replaces the previous one): check each connection's
    folder, or use `dg check defs`, which loads every one."""
    path = project / f"osipi_dagster/defs/{broken}/defs.yaml"
    original = path.read_text()
    path.write_text(original + "  tag_filtr: '*'\n")
    try:
        done = dg(project, "check", "yaml", f"osipi_dagster/defs/{broken}", **URLS)
        other = "site_b" if broken == "site_a" else "site_a"
        fine = dg(project, "check", "yaml", f"osipi_dagster/defs/{other}", **URLS)
    finally:
        path.write_text(original)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"{broken}/defs.yaml" in output and "'tag_filtr' was unexpected" in output, output
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "All component YAML validated successfully" in fine.stdout


def test_osipi_pools_apply_sets_each_connections_limit_on_the_instance(project: Path, tmp_path: Path) -> None:
    """`osipi pools apply` loads the code location (both connections), sets site_a's pool_limit on $DAGSTER_HOME's
    instance and leaves site_b (no pool_limit) to the instance default; --dry-run changes nothing."""
    path = project / "osipi_dagster/defs/site_a/defs.yaml"
    original = path.read_text()
    path.write_text(original.replace("  # pool_limit: 2\n", "  pool_limit: 3\n"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(PI_VARS)}
    env |= {"PYTHONPATH": str(project), "DAGSTER_HOME": str(home), **URLS}

    def pools(*args: str) -> dict[str, dict[str, object]]:
        done = subprocess.run([sys.executable, "-m", "osipi_dagster.cli", "pools", "apply", "--json", *args],
                              cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return {p["connection"]: p for p in json.loads(done.stdout)["pools"]}

    try:
        dry = pools("--dry-run")
        applied = pools()
        again = pools()
    finally:
        path.write_text(original)
    assert dry["site_a"] == {"connection": "site_a", "pool": "pi_web_api_site_a", "limit": 3, "before": None,
                             "action": "set"}  # fmt: skip
    assert dry["site_b"]["action"] == "instance default" and dry["site_b"]["limit"] is None
    assert (
        applied["site_a"]["action"] == "set" and applied["site_a"]["before"] is None
    )  # the dry run set nothing
    assert again["site_a"]["action"] == "unchanged" and again["site_a"]["before"] == 3
