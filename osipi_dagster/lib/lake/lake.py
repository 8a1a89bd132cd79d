"""Lake: the root of the Delta tables (local directory or s3/abfss/gs URI) and the factory for DeltaTableRef.

Storage options (credentials, endpoints) are passed through to deltalake untouched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .table import DeltaTableRef
from .uri import resolve_root, table_uri

DEFAULT_ROOT = "./data/lake"


class Lake:
    """A set of Delta tables under one root; lake.table("pi_timeseries") gives a DeltaTableRef."""

    def __init__(
        self,
        root_uri: str | os.PathLike[str] = DEFAULT_ROOT,
        storage_options: Mapping[str, str] | None = None,
    ):
        self.root_uri, self.is_local = resolve_root(root_uri)
        self.storage_options: dict[str, str] = dict(storage_options or {})
        if self.is_local:
            Path(self.root_uri).mkdir(parents=True, exist_ok=True)

    def table(self, name: str) -> DeltaTableRef:
        return DeltaTableRef(uri=table_uri(self.root_uri, name), storage_options=self.storage_options)

    def __repr__(self) -> str:
        return f"Lake({self.root_uri!r})"
