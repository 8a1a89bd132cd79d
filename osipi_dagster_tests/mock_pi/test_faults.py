"""Fault injection of mock_pi against real emulator processes: profiles, reproducible schedules, 429, drop,
WebException, hangs, latency, and that only /piwebapi is affected.

One private emulator per module (faults switched at run time through POST /admin/faults) keeps the suite fast.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_pi.faults import (
    WEB_EXCEPTION_BODY,
    FaultProfile,
    FaultProfileError,
    decide,
)
from osipi_dagster_tests.emulator import Emulator, start_emulator
from osipi_dagster_tests.samples import sample

SCHEDULE_PROFILE = "flaky:0.2+ratelimit:0.1+webexception:0.1+drop:0.1"
SCHEDULE_PATHS = ("/piwebapi/", "/piwebapi/system", "/piwebapi/dataservers")
ARGS = ("--seed", "7", "--tags", "20", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin")


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(*ARGS, log_dir=tmp_path_factory.mktemp("faults")) as emu:
        yield emu


def set_profile(emu: Emulator, profile: str, seed: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {"profile": profile}
    if seed is not None:
        body["seed"] = seed
    r = httpx.post(f"{emu.root}/admin/faults", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def observe(emu: Emulator, rounds: int) -> list[tuple[str, int | None, str | None]]:
    """Request SCHEDULE_PATHS round-robin; record (path, status or None if dropped, fault header)."""
    seen: list[tuple[str, int | None, str | None]] = []
    with httpx.Client(base_url=emu.root, timeout=10) as http:
        for i in range(rounds):
            path = SCHEDULE_PATHS[i % len(SCHEDULE_PATHS)]
            try:
                r = http.get(path)
                seen.append((path, r.status_code, r.headers.get("x-mock-pi-fault")))
            except httpx.RemoteProtocolError:
                seen.append((path, None, "drop"))
    return seen


def predict(profile: str, seed: int, rounds: int) -> list[tuple[str, int | None, str | None]]:
    parsed = FaultProfile.parse(profile)
    attempts: dict[str, int] = {}
    out: list[tuple[str, int | None, str | None]] = []
    for i in range(rounds):
        path = SCHEDULE_PATHS[i % len(SCHEDULE_PATHS)]
        attempt = attempts.get(path, 0)
        attempts[path] = attempt + 1
        d = decide(parsed, seed, f"GET {path}", attempt)
        status = None if d.kind == "drop" else (d.status or 200)
        out.append((path, status, d.kind))
    return out


# --- profile parsing (pure) ------------------------------------------------------------------------------------


def test_parse_combined_profile() -> None:
    p = FaultProfile.parse("latency:20ms+jitter:0.5s+flaky:0.2+ratelimit:10%,retry=3+timeout:0.05,hang=2s")
    assert p.latency_ms == 20.0
    assert p.jitter_ms == 500.0
    assert p.rates == {"flaky": 0.2, "ratelimit": 0.1, "timeout": 0.05}
    assert p.retry_after_s == 3
    assert p.hang_s == 2.0
    assert FaultProfile.parse("none").active is False
    assert FaultProfile.parse("latency:5").active is True
    chaos = FaultProfile.parse("chaos:0.5")
    assert sum(chaos.rates.values()) == pytest.approx(0.5)
    assert set(chaos.rates) == {"flaky", "ratelimit", "timeout", "drop", "webexception"}
    assert chaos.hang_s == 5.0 and chaos.jitter_ms == 20.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "unknown fault 'bogus'"),
        ("flaky:2", "is not between 0 and 1"),
        ("flaky:0.6+drop:0.6", "add up to 1.200"),
        ("latency", "needs a duration"),
        ("latency:fast", "bad duration 'fast'"),
        ("ratelimit:0.1,wait=2", "unknown option(s) wait"),
        ("timeout:0.1,hang=1000s", "timeout hang must be in"),
    ],
)
def test_parse_rejects_bad_profiles(spec: str, message: str) -> None:
    with pytest.raises(FaultProfileError) as err:
        FaultProfile.parse(spec)
    assert message in str(err.value)


def test_flaky_comes_in_bursts_and_is_seeded() -> None:
    p = FaultProfile.parse("flaky:0.3")
    kinds = [decide(p, 1, "GET /piwebapi/x", a).kind for a in range(2000)]
    rate = kinds.count("flaky") / len(kinds)
    # 30 % of attempts start a burst of 1-3 failures (mean 2), overlapping bursts merge: well above 30 %.
    assert 0.4 < rate < 0.65
    runs = "".join("F" if k else "." for k in kinds).split(".")
    assert max(len(r) for r in runs) >= 3
    assert kinds == [decide(p, 1, "GET /piwebapi/x", a).kind for a in range(2000)]
    assert kinds != [decide(p, 2, "GET /piwebapi/x", a).kind for a in range(2000)]


# --- against a running emulator --------------------------------------------------------------------------------


def test_schedule_is_reproducible_by_seed(emu: Emulator, tmp_path: Path) -> None:
    rounds = 45
    set_profile(emu, SCHEDULE_PROFILE, seed=11)
    first = observe(emu, rounds)
    # Same server, schedule restarted with the same seed: identical faults.
    set_profile(emu, SCHEDULE_PROFILE, seed=11)
    assert observe(emu, rounds) == first
    # A second, independent process started with that seed and profile sees the same sequence too.
    args = (
        "--seed",
        "11",
        "--tags",
        "20",
        "--clock",
        "frozen:2024-05-01T12:00:00Z",
        "--faults",
        SCHEDULE_PROFILE,
    )
    with start_emulator(*args, log_dir=tmp_path) as other:
        assert observe(other, rounds) == first
    # And the schedule is exactly the one decide() predicts, so tests can plan around it.
    assert first == predict(SCHEDULE_PROFILE, 11, rounds)
    kinds = {fault for _, _, fault in first}
    assert {"flaky", "ratelimit", "webexception", "drop", None} <= kinds
    set_profile(emu, SCHEDULE_PROFILE, seed=12)
    assert observe(emu, rounds) != first
    state = httpx.get(f"{emu.root}/admin/faults", timeout=5).json()
    assert state["requests"] == rounds
    assert state["injected"] == sum(1 for _, _, f in predict(SCHEDULE_PROFILE, 12, rounds) if f)
    set_profile(emu, "none")


def test_ratelimit_sends_retry_after(emu: Emulator) -> None:
    set_profile(emu, "ratelimit:1,retry=4")
    r = httpx.get(f"{emu.api}/dataservers", timeout=5)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "4"
    assert r.json()["Errors"][0].startswith("Too many requests")
    set_profile(emu, "none")
    assert httpx.get(f"{emu.api}/dataservers", timeout=5).status_code == 200


def _raw_get(emu: Emulator, path: str) -> tuple[dict[str, str], bytes]:
    """GET over a bare socket, reading until the server closes: shows exactly what was sent."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, body


def test_drop_truncates_the_body(emu: Emulator) -> None:
    set_profile(emu, "none")
    _, full = _raw_get(emu, "/piwebapi/dataservers")
    set_profile(emu, "drop:1")
    headers, partial = _raw_get(emu, "/piwebapi/dataservers")
    assert headers["x-mock-pi-fault"] == "drop"
    assert int(headers["content-length"]) == len(full)
    assert 0 < len(partial) < len(full)
    assert full.startswith(partial)  # truncated, never altered
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{emu.api}/dataservers", timeout=5)
    set_profile(emu, "none")


def test_webexception_is_a_200_with_the_pi_shape(emu: Emulator) -> None:
    set_profile(emu, "webexception:1")
    r = httpx.get(f"{emu.api}/dataservers", timeout=5)
    assert r.status_code == 200
    assert r.json() == WEB_EXCEPTION_BODY
    assert r.json() == sample("errors_webexception.json")
    set_profile(emu, "none")


def test_timeout_hangs_past_the_client_then_answers_504(emu: Emulator) -> None:
    set_profile(emu, "timeout:1,hang=1s")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{emu.api}/system", timeout=0.3)
    started = time.monotonic()
    r = httpx.get(f"{emu.api}/system", timeout=10)
    assert r.status_code == 504
    assert time.monotonic() - started >= 0.95
    set_profile(emu, "none")


def test_latency_delays_every_api_request(emu: Emulator) -> None:
    set_profile(emu, "latency:150ms")
    with httpx.Client(timeout=5) as http:
        http.get(f"{emu.api}/").raise_for_status()  # warm the connection
        started = time.monotonic()
        assert http.get(f"{emu.api}/").status_code == 200
        assert time.monotonic() - started >= 0.15
    set_profile(emu, "none")


def test_only_piwebapi_paths_get_faults(emu: Emulator) -> None:
    set_profile(emu, "flaky:1")
    assert httpx.get(f"{emu.root}/health", timeout=5).status_code == 200
    assert httpx.get(f"{emu.root}/metrics", timeout=5).status_code == 200
    assert httpx.get(f"{emu.api}/", timeout=5).status_code in (502, 503)
    set_profile(emu, "none")


def test_admin_faults_validates_and_requires_admin(emu: Emulator, tmp_path: Path) -> None:
    r = httpx.post(f"{emu.root}/admin/faults", json={"profile": "flaky:3"}, timeout=5)
    assert r.status_code == 400
    assert "is not between 0 and 1" in r.json()["Errors"][0]
    with start_emulator("--tags", "5", "--faults", "flaky:0.5", log_dir=tmp_path) as plain:
        r = httpx.post(f"{plain.root}/admin/faults", json={"profile": "none"}, timeout=5)
        assert r.status_code == 404
        assert "--admin" in r.json()["Errors"][0]


def test_bad_faults_flag_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unknown fault 'sometimes'"):
        start_emulator("--tags", "5", "--faults", "sometimes", log_dir=tmp_path)
