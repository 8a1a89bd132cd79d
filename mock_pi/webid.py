"""WebID 2.0 encoding for emulator objects.

Full WebIDs as PI Web API 2017 R2+ builds them: type char, version, marker, owner marker, GUIDs in .NET byte order
and an upper-case path, all url-safe base64 without padding. Clients must treat them as opaque; we only need them
unique, stable and realistic-looking.
"""

from __future__ import annotations

import base64
import struct
import uuid

# Object markers (REFERENCE §4).
DATA_SERVER = "DS"
POINT = "DP"
ASSET_SERVER = "RS"
ASSET_DATABASE = "RD"
ELEMENT = "Em"
ATTRIBUTE = "Ab"
EVENT_FRAME = "Fm"
ELEMENT_TEMPLATE = "ET"
ENUMERATION_SET = "MS"
ENUMERATION_VALUE = "MV"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def encode_guid(guid: uuid.UUID) -> str:
    """22-char url-safe base64 of a GUID in Microsoft (little-endian fields) byte order."""
    return _b64(guid.bytes_le)


def encode_path(path: str) -> str:
    """Url-safe base64 of the upper-cased path without its leading backslashes."""
    return _b64(path.lstrip("\\").upper().encode("utf-8"))


def stable_guid(seed: int, *parts: object) -> uuid.UUID:
    """Deterministic GUID for an emulator object, so WebIDs survive restarts with the same seed."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mock-pi/{seed}/" + "/".join(str(p) for p in parts))


def full(
    marker: str, guids: list[uuid.UUID], path: str, *, owner: str = "", point_id: int | None = None
) -> str:
    """A Full WebID: 'F1' + marker + owner + GUIDs (+ point id) + encoded path."""
    body = "".join(encode_guid(g) for g in guids)
    if point_id is not None:
        body += _b64(struct.pack("<i", point_id))
    return f"F1{marker}{owner}{body}{encode_path(path)}"


def path_only(marker: str, path: str, *, owner: str = "") -> str:
    """A PathOnly WebID ('P1'), which clients may build themselves from a path."""
    return f"P1{marker}{owner}{encode_path(path)}"
