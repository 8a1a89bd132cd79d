"""The emulator process helpers for tests (they live in mock_pi.process so the demo and benchmarks share them)."""

from pathlib import Path

from mock_pi.process import Emulator, free_port, start_emulator, stop_process

PROJECT_ROOT = Path(__file__).resolve().parent.parent

__all__ = ["PROJECT_ROOT", "Emulator", "free_port", "start_emulator", "stop_process"]
