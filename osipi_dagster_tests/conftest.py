"""Shared pytest fixtures: real mock_pi emulators on loopback.

`emulator` is one shared, read-only emulator with a frozen clock; `emulator_factory` starts private ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from osipi_dagster_tests.emulator import Emulator, start_emulator

DEFAULT_ARGS = ("--seed", "42", "--tags", "500", "--clock", "frozen:2024-05-01T12:00:00Z", "--admin")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A shared emulator (seed 42, 500 tags, clock frozen at 2024-05-01T12:00Z). Never mutate its state."""
    with start_emulator(*DEFAULT_ARGS, log_dir=tmp_path_factory.mktemp("emulator")) as emu:
        yield emu


@pytest.fixture
def emulator_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Emulator]]:
    """Start private emulators with given CLI args; all are stopped at teardown."""
    started: list[Emulator] = []

    def start(*args: str, timeout: float = 30.0) -> Emulator:
        emu = start_emulator(*args, timeout=timeout, log_dir=tmp_path_factory.mktemp("emulator"))
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
