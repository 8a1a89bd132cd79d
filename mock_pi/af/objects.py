"""AF objects as the emulator holds them: asset server, databases, element templates, elements, attributes and
event frames (plain slotted dataclasses linked into trees), the constants PI Web API shows for them, and the tree and
name-filter helpers routes share."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mock_pi.af.templates import AttrSpec

if TYPE_CHECKING:
    from mock_pi.catalog import Point

SERVER_NAME = "PIAF01"
SERVER_VERSION = "2.10.9.593"
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
# AF reports an open (in-progress) event frame's end as DateTime.MaxValue; PI Web API writes it as this string.
# We answer the same literal so clients that test for it (or for "far future") behave as against a real server.
OPEN_END_TEXT = "9999-12-31T23:59:59Z"
# Longest event frame the generator makes: searches look back this far for frames that started before a window.
MAX_EF_DURATION_US = 3 * US_PER_DAY
# Static attribute values carry no time in AF; PI Web API reports them at the epoch.
STATIC_TIMESTAMP_US = 0
SEVERITIES = ("None", "Information", "Warning", "Minor", "Major", "Critical")


@dataclass(eq=False, slots=True)
class ElementTemplate:
    db: Database
    name: str
    description: str
    instance_type: str  # "Element" | "EventFrame"
    base: ElementTemplate | None
    categories: tuple[str, ...]
    own_specs: tuple[AttrSpec, ...]
    id: uuid.UUID
    web_id: str
    path: str
    severity: str = "None"
    can_be_acknowledged: bool = False

    @property
    def specs(self) -> tuple[AttrSpec, ...]:
        """Attribute templates including those inherited from base templates (base first, as AF lists them)."""
        return (self.base.specs if self.base else ()) + self.own_specs

    def is_a(self, name: str) -> bool:
        """True when this template or one of its bases is named `name` (AF's templateName filter matches derived)."""
        t: ElementTemplate | None = self
        low = name.lower()
        while t is not None:
            if t.name.lower() == low:
                return True
            t = t.base
        return False

    def lineage(self) -> list[ElementTemplate]:
        out: list[ElementTemplate] = []
        t: ElementTemplate | None = self
        while t is not None:
            out.append(t)
            t = t.base
        return out


@dataclass(eq=False, slots=True)
class AssetServer:
    name: str
    id: uuid.UUID
    web_id: str
    path: str
    databases: list[Database] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Database:
    server: AssetServer
    index: int
    name: str
    description: str
    id: uuid.UUID
    web_id: str
    path: str
    templates: dict[str, ElementTemplate] = field(default_factory=dict)  # lower name → template
    roots: list[Element] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)  # pre-order
    equipment: list[Element] = field(default_factory=list)  # candidates for event-frame primary references


@dataclass(eq=False, slots=True)
class Element:
    db: Database
    parent: Element | None
    name: str
    description: str
    path: str
    template: ElementTemplate
    id: uuid.UUID
    web_id: str
    index: int  # pre-order position in its database
    pi_slot: int  # first slot of the global round-robin over catalog points
    children: list[Element] = field(default_factory=list)
    attributes_cache: list[Attribute] | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        return self.template.categories

    def descendants(self) -> Iterator[Element]:
        """Pre-order descendants (not including self)."""
        return _preorder(self.children)


@dataclass(eq=False, slots=True)
class Attribute:
    owner: Element | EventFrame
    parent: Attribute | None
    spec: AttrSpec
    template: ElementTemplate  # the element/EF template that defines the attribute template
    name: str
    path: str
    id: uuid.UUID
    web_id: str
    type: str
    type_qualifier: str
    units_name: str
    units_abbr: str
    point: Point | None
    # Static value: float, int, str, bool, DateTime as µs, or (name, code) for EnumerationValue.
    value: Any
    children: list[Attribute] = field(default_factory=list)

    @property
    def config_string(self) -> str:
        """PI Point data reference config string, `\\\\SERVER\\tag;UOM=...` (the point's source units)."""
        if self.point is None:
            return ""
        uom = f";UOM={self.units_abbr}" if self.units_abbr else ""
        return f"{self.point.path}{uom}"

    def descendants(self) -> Iterator[Attribute]:
        return _preorder(self.children)


@dataclass(eq=False, slots=True)
class EventFrame:
    db: Database
    parent: EventFrame | None
    name: str
    path: str
    template: ElementTemplate
    id: uuid.UUID
    web_id: str
    start_us: int
    planned_end_us: int
    severity: str
    refs: tuple[Element, ...]  # primary first
    ordinal: int  # index within its day (or phase number for children)
    children: list[EventFrame] = field(default_factory=list)
    attributes_cache: list[Attribute] | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        return self.template.categories

    @property
    def primary(self) -> Element:
        return self.refs[0]

    def descendants(self) -> Iterator[EventFrame]:
        return _preorder(self.children)


def _preorder(children: list[Any]) -> Iterator[Any]:
    """Pre-order walk of a tree given the root's children (elements, attributes and event frames share it)."""
    stack = list(reversed(children))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def wildcard(pattern: str | None) -> re.Pattern[str] | None:
    """AF name filter (`*` any run, `?` one char, case-insensitive, whole name) → compiled regex; None = no filter."""
    if pattern is None or pattern == "" or pattern == "*":
        return None
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def day_of(us: int) -> int:
    return us // US_PER_DAY
