"""Fixtures of the third-party client tests: one read-only emulator with HTTP Basic, a raw httpx reader of it, and a
guard that fails a test whose client tries to reach anything but loopback (tagreader has a built-in default URL).

The clients (tagreader, osisoft-pidevclub-piwebapi, kukur) are installed by `make venv`; see requirements-nodeps.txt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from osipi_dagster_tests.emulator import Emulator, start_emulator
from osipi_dagster_tests.thirdparty.raw import RawPI, emulator_args

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="session")
def pi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A shared emulator that only accepts HTTP Basic (seed 42, 200 tags, clock frozen at 2024-05-01T12:00Z)."""
    with start_emulator(*emulator_args(tags=200), log_dir=tmp_path_factory.mktemp("thirdparty")) as emu:
        yield emu


@pytest.fixture(scope="session")
def raw(pi: Emulator) -> Iterator[RawPI]:
    with RawPI(pi.api) as reader:
        yield reader


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and fail the test on) any name lookup of a host other than loopback."""
    attempts: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            attempts.append(name)
            raise OSError(f"test guard: {name} is not loopback; third-party client tests stay on 127.0.0.1")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempts
    assert not attempts, f"a client tried to reach {attempts}"
