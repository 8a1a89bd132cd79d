"""The emulator's Asset Framework: `AFModel` and the AF objects it holds.

Modules: `templates.py` (what is generated, as named records), `objects.py` (AF object types, constants),
`hierarchy.py` (databases, templates, the element tree), `attributes.py` (attributes, built on first use),
`eventframes.py` (event frames per UTC day), `model.py` (`AFModel`: assembly and lookups by WebID and path).
"""

from mock_pi.af.model import AFModel
from mock_pi.af.objects import (
    MAX_EF_DURATION_US,
    OPEN_END_TEXT,
    SERVER_NAME,
    SERVER_VERSION,
    SEVERITIES,
    STATIC_TIMESTAMP_US,
    US_PER_DAY,
    US_PER_S,
    AssetServer,
    Attribute,
    Database,
    Element,
    ElementTemplate,
    EventFrame,
    day_of,
    wildcard,
)
from mock_pi.af.templates import AttrSpec

__all__ = [
    "MAX_EF_DURATION_US",
    "OPEN_END_TEXT",
    "SERVER_NAME",
    "SERVER_VERSION",
    "SEVERITIES",
    "STATIC_TIMESTAMP_US",
    "US_PER_DAY",
    "US_PER_S",
    "AFModel",
    "AssetServer",
    "AttrSpec",
    "Attribute",
    "Database",
    "Element",
    "ElementTemplate",
    "EventFrame",
    "day_of",
    "wildcard",
]
