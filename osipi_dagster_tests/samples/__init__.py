"""Official PI Web API sample bodies (see README.md here): `sample(name)` reads one, and fails if it is missing."""

from __future__ import annotations

from pathlib import Path

import orjson

SAMPLES = Path(__file__).parent


def sample(name: str) -> object:
    """The decoded body of `name`; a missing file is an error (the samples are part of the repository)."""
    path = SAMPLES / name
    if not path.is_file():
        raise FileNotFoundError(f"sample body {name} is missing from {SAMPLES}: restore it from git")
    return orjson.loads(path.read_bytes())
