"""Lake root and table URI handling: local paths become absolute directories, remote URIs pass through.

No network access happens here; remote schemes are only validated and joined.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Schemes delta-rs (object_store) understands for remote storage; credentials travel in storage_options.
REMOTE_SCHEMES = frozenset({"s3", "s3a", "abfs", "abfss", "az", "adl", "azure", "gs", "gcs"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def resolve_root(root_uri: str | os.PathLike[str]) -> tuple[str, bool]:
    """Return (normalised root, is_local). Local roots are absolute paths; remote roots keep their scheme."""
    text = os.fspath(root_uri).strip()
    if not text:
        raise ValueError(
            "Lake root_uri is empty: pass a directory such as ./data/lake or a URI like s3://bucket/lake"
        )
    match = _SCHEME.match(text)
    if match is None:
        return str(Path(text).expanduser().resolve()), True
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return str(Path(rest or "/").expanduser().resolve()), True
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(
            f"Lake root_uri {text!r} uses unsupported scheme {scheme!r}: "
            f"use a local path or one of {', '.join(sorted(REMOTE_SCHEMES))}"
        )
    bucket_and_path = rest.strip("/")
    if not bucket_and_path:
        raise ValueError(f"Lake root_uri {text!r} names no bucket/container")
    return f"{scheme}://{bucket_and_path}", False


def table_uri(root: str, name: str) -> str:
    """Join a validated table name (e.g. "pi_timeseries" or "pi/recorded") under the lake root."""
    parts = name.strip("/").split("/")
    bad = [p for p in parts if not _SEGMENT.match(p) or p in {".", ".."}]
    if not name.strip("/") or bad:
        raise ValueError(
            f"Invalid table name {name!r}: use path segments of letters, digits, '_', '-', '.' "
            "(no empty segments, no '..')"
        )
    return root.rstrip("/") + "/" + "/".join(parts)
