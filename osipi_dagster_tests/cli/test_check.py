"""`osipi check`: the verdict and the named fix for each kind of failure, and a healthy server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from osipi_dagster_tests.cli.conftest import osipi
from osipi_dagster_tests.emulator import Emulator, free_port
from osipi_dagster_tests.tls.conftest import make_pki

REAL = ("--seed", "3", "--tags", "40", "--clock", "real")


def steps_of(run_json: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in run_json["steps"]}


def test_healthy_server(wide_emulator: Emulator) -> None:
    run = osipi("check", PI_WEB_API_URL=wide_emulator.api)
    assert run.code == 0, run.text
    assert "verdict: HEALTHY" in run.out
    assert "NT AUTHORITY\\ANONYMOUS LOGON" in run.out
    assert "PI Web API 2019 SP1 1.13.0.6298" in run.out
    report = osipi("check", "--json", PI_WEB_API_URL=wide_emulator.api).json()
    assert report["healthy"] is True
    assert set(steps_of(report).values()) <= {"ok", "skip"}, report
    facts = report["facts"]
    assert facts["tags_selected"] == 60
    assert facts["data_servers"] == ["PISRV01", "PISRV02"]
    assert facts["af_databases"] == ["\\\\PIAF01\\Plant Operations", "\\\\PIAF01\\Mining Site"]
    assert abs(facts["clock_offset_s"]) < 60
    assert facts["sample_values"] > 0


def test_wrong_password(emulator_factory: Callable[..., Emulator]) -> None:
    emu = emulator_factory(*REAL, "--auth", "basic", "--username", "svc-pi", "--password", "right-one")
    env = {"PI_WEB_API_URL": emu.api, "PI_AUTH_METHOD": "basic", "PI_USERNAME": "svc-pi"}
    run = osipi("check", **env, PI_PASSWORD="Wr0ng-Secret-77")
    assert run.code == 1, run.text
    assert "verdict: UNHEALTHY: auth failed: check PI_USERNAME/PI_PASSWORD" in run.out
    assert "Wr0ng-Secret-77" not in run.text
    good = osipi("check", **env, PI_PASSWORD="right-one")
    assert good.code == 0, good.text
    assert "PI sees svc-pi (Basic, basic)" in good.out
    assert "right-one" not in good.text


def test_wrong_url_closed_port() -> None:
    run = osipi("check", PI_WEB_API_URL=f"http://127.0.0.1:{free_port()}/piwebapi")
    assert run.code == 1, run.text
    assert "FAIL reachability" in run.flat
    assert "verdict: UNHEALTHY: reachability failed: check PI_WEB_API_URL (host and port)" in run.out


def test_wrong_url_path(wide_emulator: Emulator) -> None:
    run = osipi("check", PI_WEB_API_URL=f"{wide_emulator.root}/pi")
    assert run.code == 1, run.text
    assert "ok reachability" in run.flat
    assert "pi web api failed: set PI_WEB_API_URL to the PI Web API root, which ends in /piwebapi" in run.out


def test_untrusted_certificate(tmp_path: Path, emulator_factory: Callable[..., Emulator]) -> None:
    pki = make_pki(tmp_path)
    emu = emulator_factory(*REAL, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key))
    run = osipi("check", PI_WEB_API_URL=emu.api)
    assert run.code == 1, run.text
    assert "FAIL tls" in run.flat
    assert "certificate verification failed" in run.out
    assert "verdict: UNHEALTHY: tls failed: set PI_CA_BUNDLE to your CA's PEM file" in run.out
    trusted = osipi("check", PI_WEB_API_URL=emu.api, PI_CA_BUNDLE=str(pki.ca))
    assert trusted.code == 0, trusted.text
    assert "ok tls certificate trusted" in trusted.flat


def test_filter_that_selects_nothing(wide_emulator: Emulator) -> None:
    run = osipi("check", PI_WEB_API_URL=wide_emulator.api, PI_TAG_FILTER="NO-SUCH-TAG*")
    assert run.code == 1, run.text
    assert "'NO-SUCH-TAG*' selects no tag on PISRV01, PISRV02" in run.out
    assert "verdict: UNHEALTHY: tag filter failed: fix PI_TAG_FILTER" in run.out
    assert "skip sample read" in run.flat


def test_unknown_af_database_and_data_server(wide_emulator: Emulator) -> None:
    run = osipi(
        "check", "--json", PI_WEB_API_URL=wide_emulator.api,
        PI_DATA_SERVERS="PISRV09", PI_AF_DATABASES="\\\\PIAF01\\Nowhere",
    )  # fmt: skip
    assert run.code == 1, run.text
    report = run.json()
    assert steps_of(report)["data servers"] == "fail"
    assert steps_of(report)["af databases"] == "fail"
    assert "fix PI_DATA_SERVERS" in report["verdict"] and "fix PI_AF_DATABASES" in report["verdict"]


def test_named_connection_from_component_yaml(
    tmp_path: Path, emulator_factory: Callable[..., Emulator]
) -> None:
    emu = emulator_factory(*REAL, "--auth", "basic", "--username", "site-a", "--password", "pw-a")
    defs = tmp_path / "site_a" / "defs.yaml"
    defs.parent.mkdir()
    defs.write_text(
        "type: osipi_dagster.PIConnection\n"
        "attributes:\n"
        f"  pi_web_api_url: {emu.api}\n"
        "  auth_method: basic\n"
        "  username: site-a\n"
        '  password: "{{ env.SITE_A_PASSWORD }}"\n'
        "  tag_filter: '*'\n"
        "  key_prefix: site_a\n"  # the component's own field: not a connection setting
    )
    run = osipi("check", "--connection", str(defs.parent), SITE_A_PASSWORD="pw-a")
    assert run.code == 0, run.text
    assert f"connection {defs}" in run.out
    assert "PI sees site-a (Basic, basic)" in run.out
    missing = osipi("check", "--connection", str(defs))
    assert missing.code == 2, missing.text
    assert "SITE_A_PASSWORD is not set" in missing.out
    unknown = osipi("check", "--connection", "no_such_site")
    assert unknown.code == 2
    assert "no connection 'no_such_site'" in unknown.out
    assert "dg scaffold defs osipi_dagster.PIConnection no_such_site" in unknown.out
    # By name, from the folder the code location also loads (OSIPI_CONNECTIONS_DIR); the error lists what it knows.
    by_name = osipi(
        "check", "--connection", "site_a", SITE_A_PASSWORD="pw-a", OSIPI_CONNECTIONS_DIR=str(tmp_path)
    )
    assert by_name.code == 0, by_name.text
    assert f"connection {defs}" in by_name.out
    other = osipi("check", "--connection", "site_z", OSIPI_CONNECTIONS_DIR=str(tmp_path))
    assert other.code == 2 and "site_a" in other.out, other.text


def test_cli_does_not_import_dagster() -> None:
    import subprocess
    import sys

    code = "import sys, osipi_dagster.cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_scaffolded_component_yaml(tmp_path: Path, wide_emulator: Emulator) -> None:
    """The file `dg scaffold defs` writes, as is: its URL comes from <NAME>_URL."""
    from osipi_dagster.components.scaffold import TEMPLATE

    defs = tmp_path / "site_b" / "defs.yaml"
    defs.parent.mkdir()
    defs.write_text(TEMPLATE.format(type_name="osipi_dagster.PIConnection", name="site_b", var="SITE_B"))
    run = osipi("check", "--json", "--connection", str(defs), SITE_B_URL=wide_emulator.api)
    assert run.code == 0, run.text
    assert run.json()["url"] == wide_emulator.api
    assert run.json()["facts"]["tags_selected"] == 60
