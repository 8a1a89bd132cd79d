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


@pytest.fixture(autouse=True)
def _forget_closed_dagster_instances() -> Iterator[None]:
    """Clear Dagster's process-wide defs-state storage when it points at an instance a test has closed.

    Every DagsterInstance publishes its storage in a context variable; instances whose lifetimes overlap without
    nesting (a session-scoped one and a test's `instance_for_test`) can leave it pointing at a dead instance, and
    the next `materialize` then fails with "Attempted to resolve undefined DagsterInstance weakref".
    """
    yield
    from dagster._core.errors import DagsterInvariantViolationError
    from dagster._core.storage.defs_state.base import _current_storage

    storage = _current_storage.get()
    if storage is None:
        return
    try:
        storage._instance  # noqa: B018 - resolving the weakref is the check
    except DagsterInvariantViolationError:
        _current_storage.set(None)
