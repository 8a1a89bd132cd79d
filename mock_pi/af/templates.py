"""The AF content the emulator generates, as named records: attribute templates (`AttrSpec`), element and
event-frame templates, database profiles (sites, areas, equipment), event-frame kinds and AF unit names.

Pure data: `hierarchy.py` builds databases, templates and elements from it, `attributes.py` the attributes and
`eventframes.py` the event frames. Changing anything here changes the generated model (see test_af_fingerprint.py).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """An attribute template: how every element (or event frame) of a template gets this attribute."""

    name: str
    type: str  # Double, Int32, String, DateTime, Boolean, EnumerationValue
    _: KW_ONLY
    units: str = ""  # units name, e.g. "cubic meter per hour" (PI Point attributes take their point's units)
    units_abbr: str = ""  # e.g. "m3/h"
    pi_point: str | None = None  # "numeric" | "digital" | "captured" (EF: the primary element's point) | None
    family: str = ""  # catalog point family the data reference draws from (FIC flow, TI temperature, ...)
    categories: tuple[str, ...] = ()
    excluded: bool = False
    hidden: bool = False
    config_item: bool = False
    trait: str = ""
    description: str = ""
    children: tuple[AttrSpec, ...] = ()
    enum: tuple[str, ...] = ()  # value names (codes 1..n) for EnumerationValue statics
    enum_set: str = ""
    # Static value generator key: "choice:a|b|c", "range:lo:hi", "int:lo:hi", "date", "bool:p", "serial", "name"
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementTemplateDef:
    """An element template: `base` names the template it derives from (its attributes come first)."""

    name: str
    description: str
    base: str | None
    categories: tuple[str, ...]
    attributes: tuple[AttrSpec, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFrameTemplateDef:
    """An event-frame template with the severity its frames default to."""

    name: str
    description: str
    categories: tuple[str, ...]
    severity: str
    can_be_acknowledged: bool
    attributes: tuple[AttrSpec, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFrameKind:
    """How often top-level frames of a template occur (relative weight), how long they last, which severities."""

    template: str
    weight: float
    min_s: int
    max_s: int
    severities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPhase:
    """A child frame of every Batch, covering `share` of the batch's duration."""

    name: str
    share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Equipment:
    """An equipment template of a profile and the tag prefix its elements are named with (P-10101, ...)."""

    template: str
    tag_prefix: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The shape of one AF database: enterprise root, sites, areas per site, units, equipment, one flat collection."""

    name: str
    description: str
    root: str
    sites: tuple[str, ...]
    areas: tuple[str, ...]
    unit_prefix: str
    equipment: tuple[Equipment, ...]
    with_motor: tuple[str, ...]  # equipment templates that get a Motor child
    collection: str
    collection_template: str
    collection_prefix: str


def _pi(name: str, family: str, cats: tuple[str, ...] = ("Process Data",), **kw: Any) -> AttrSpec:
    return AttrSpec(name, "Double", pi_point="numeric", family=family, categories=cats, **kw)


def _limit(name: str, trait: str, value: str) -> AttrSpec:
    # Limits are in the units of the parent attribute's point (set when the attribute is built).
    return AttrSpec(name, "Double", categories=("Limits",), trait=trait, value=value)


# Catalog units (abbreviations) → AF unit names.
UNIT_NAMES = {
    "m3/h": "cubic meter per hour",
    "°C": "degree Celsius",
    "bar": "bar",
    "%": "percent",
    "ppm": "parts per million",
    "kW": "kilowatt",
    "rpm": "revolutions per minute",
    "count": "count",
    "mm/s": "millimeter per second",
}


_CRITICALITY = ("High", "Medium", "Low")
_NAMEPLATE = ("Nameplate",)

ELEMENT_TEMPLATES: tuple[ElementTemplateDef, ...] = (
    ElementTemplateDef(
        name="Enterprise",
        description="Top of the asset hierarchy",
        base=None,
        categories=("Organisation",),
        attributes=(
            AttrSpec(
                "Region",
                "String",
                categories=("Configuration",),
                config_item=True,
                value="choice:EMEA|AMER|APAC",
            ),
            AttrSpec("Reporting Currency", "String", categories=("Configuration",), value="choice:USD|EUR"),
        ),
    ),
    ElementTemplateDef(
        name="Site",
        description="Production site",
        base=None,
        categories=("Location",),
        attributes=(
            AttrSpec(
                "Latitude",
                "Double",
                units="degree",
                units_abbr="°",
                categories=("Location",),
                value="range:-60:60",
            ),
            AttrSpec(
                "Longitude",
                "Double",
                units="degree",
                units_abbr="°",
                categories=("Location",),
                value="range:-180:180",
            ),
            AttrSpec("Site Code", "String", categories=("Configuration",), config_item=True, value="serial"),
            AttrSpec("Commissioned", "DateTime", categories=("Configuration",), value="date"),
            AttrSpec("Headcount", "Int32", categories=("Configuration",), value="int:20:900"),
            _pi("Site Power", "JI", ("Energy",)),
        ),
    ),
    ElementTemplateDef(
        name="Area",
        description="Process area",
        base=None,
        categories=("Process",),
        attributes=(
            AttrSpec("Area Code", "String", categories=("Configuration",), value="serial"),
            _pi("Power", "JI", ("Energy",)),
        ),
    ),
    ElementTemplateDef(
        name="Unit",
        description="Process unit",
        base=None,
        categories=("Process",),
        attributes=(
            _pi("Throughput", "FIC"),
            AttrSpec(
                "Status", "EnumerationValue", pi_point="digital", family="HS", categories=("Process Data",)
            ),
            AttrSpec("Running", "Boolean", categories=("Configuration",), value="bool:0.9"),
            AttrSpec(
                "Design Capacity",
                "Double",
                units="cubic meter per hour",
                units_abbr="m3/h",
                value="range:50:500",
            ),
        ),
    ),
    ElementTemplateDef(
        name="Equipment",
        description="Base template for equipment",
        base=None,
        categories=("Equipment",),
        attributes=(
            AttrSpec(
                "Manufacturer",
                "String",
                categories=_NAMEPLATE,
                value="choice:Sulzer|KSB|Flowserve|Atlas Copco|Siemens|ABB",
            ),
            AttrSpec("Model", "String", categories=_NAMEPLATE, value="serial"),
            AttrSpec("Install Date", "DateTime", categories=_NAMEPLATE, value="date"),
            AttrSpec(
                "Rated Power",
                "Double",
                units="kilowatt",
                units_abbr="kW",
                categories=_NAMEPLATE,
                value="range:5:900",
            ),
            AttrSpec(
                "Criticality",
                "EnumerationValue",
                categories=("Configuration",),
                enum=_CRITICALITY,
                enum_set="Criticality",
                value="enum",
            ),
            AttrSpec("In Service", "Boolean", categories=("Configuration",), value="bool:0.95"),
            AttrSpec("Asset Tag", "String", hidden=True, description="CMMS key (hidden)", value="serial"),
        ),
    ),
    ElementTemplateDef(
        name="Pump",
        description="Centrifugal pump",
        base="Equipment",
        categories=("Rotating Equipment",),
        attributes=(
            _pi("Flow", "FIC"),
            _pi(
                "Discharge Pressure",
                "PI",
                children=(
                    _limit("High Limit", "LimitHi", "range:18:22"),
                    _limit("Low Limit", "LimitLo", "range:0.5:2"),
                ),
            ),
            _pi("Speed", "SI"),
            AttrSpec(
                "Efficiency",
                "Double",
                units="percent",
                units_abbr="%",
                categories=_NAMEPLATE,
                value="range:55:90",
            ),
        ),
    ),
    ElementTemplateDef(
        name="Compressor",
        description="Gas compressor",
        base="Equipment",
        categories=("Rotating Equipment",),
        attributes=(
            _pi("Suction Pressure", "PI"),
            _pi("Discharge Pressure", "PI"),
            _pi("Temperature", "TI"),
            _pi("Legacy Vibration", "VIB", excluded=True, description="Old DCS tag, superseded"),
        ),
    ),
    ElementTemplateDef(
        name="Tank",
        description="Storage tank",
        base="Equipment",
        categories=("Static Equipment",),
        attributes=(
            _pi(
                "Level",
                "LI",
                children=(
                    _limit("HiHi", "LimitHiHi", "range:90:98"),
                    _limit("LoLo", "LimitLoLo", "range:2:8"),
                ),
            ),
            _pi("Temperature", "TI"),
            AttrSpec(
                "Capacity",
                "Double",
                units="cubic meter",
                units_abbr="m3",
                categories=_NAMEPLATE,
                value="range:100:5000",
            ),
            AttrSpec(
                "Product",
                "String",
                categories=("Configuration",),
                value="choice:Ethanol|Naphtha|Water|Caustic",
            ),
        ),
    ),
    ElementTemplateDef(
        name="Meter",
        description="Flow meter",
        base="Equipment",
        categories=("Metering",),
        attributes=(
            _pi("Flow", "FIC"),
            _pi("Totalizer", "CNT"),
            AttrSpec("Meter Factor", "Double", value="range:0.98:1.02"),
        ),
    ),
    ElementTemplateDef(
        name="Motor",
        description="Electric motor",
        base=None,
        categories=("Rotating Equipment",),
        attributes=(
            _pi("Power", "JI", ("Energy",)),
            _pi("Winding Temperature", "TI"),
            AttrSpec(
                "Rated Speed",
                "Int32",
                units="revolutions per minute",
                units_abbr="rpm",
                categories=_NAMEPLATE,
                value="int:900:3600",
            ),
        ),
    ),
    ElementTemplateDef(
        name="Crusher",
        description="Cone crusher",
        base="Equipment",
        categories=("Rotating Equipment",),
        attributes=(
            _pi("Feed Flow", "FIC"),
            _pi("Power Draw", "JI", ("Energy",)),
            AttrSpec(
                "Closed Side Setting", "Double", units="millimeter", units_abbr="mm", value="range:8:40"
            ),
        ),
    ),
    ElementTemplateDef(
        name="Conveyor",
        description="Belt conveyor",
        base="Equipment",
        categories=("Rotating Equipment",),
        attributes=(
            _pi("Drive Speed", "SI"),
            _pi("Drive Power", "JI", ("Energy",)),
            AttrSpec(
                "Length",
                "Double",
                units="meter",
                units_abbr="m",
                categories=_NAMEPLATE,
                value="range:50:2000",
            ),
        ),
    ),
    ElementTemplateDef(
        name="Haul Truck",
        description="Haul truck",
        base="Equipment",
        categories=("Mobile Equipment",),
        attributes=(
            _pi("Loads Hauled", "CNT"),
            _pi("Fuel Level", "LI"),
            AttrSpec("Engine Hours", "Int32", units="hour", units_abbr="h", value="int:100:40000"),
        ),
    ),
    ElementTemplateDef(
        name="Collection",
        description="Flat collection of like assets",
        base=None,
        categories=("Organisation",),
        attributes=(),
    ),
)

_DOWNTIME_REASONS = ("Planned Maintenance", "Breakdown", "Power Loss", "No Feed", "Operator Stop")

EVENT_FRAME_TEMPLATES: tuple[EventFrameTemplateDef, ...] = (
    EventFrameTemplateDef(
        name="Batch",
        description="Production batch",
        categories=("Production",),
        severity="None",
        can_be_acknowledged=False,
        attributes=(
            AttrSpec(
                "Product",
                "String",
                categories=("Batch Data",),
                value="choice:Grade A|Grade B|Grade C|Resin X",
            ),
            AttrSpec("Batch ID", "String", categories=("Batch Data",), value="name"),
            AttrSpec(
                "Target Quantity",
                "Double",
                units="kilogram",
                units_abbr="kg",
                categories=("Batch Data",),
                value="range:1000:9000",
            ),
            AttrSpec("Temperature", "Double", pi_point="captured", family="TI", categories=("Process Data",)),
            AttrSpec("Operator", "String", categories=("Batch Data",), value="choice:Alex|Sam|Kim|Noor|Lee"),
        ),
    ),
    EventFrameTemplateDef(
        name="Batch Phase",
        description="Phase of a production batch",
        categories=("Production",),
        severity="None",
        can_be_acknowledged=False,
        attributes=(
            AttrSpec("Phase Number", "Int32", categories=("Batch Data",), value="phase"),
            AttrSpec("Temperature", "Double", pi_point="captured", family="TI", categories=("Process Data",)),
        ),
    ),
    EventFrameTemplateDef(
        name="Downtime",
        description="Unplanned or planned stop",
        categories=("Reliability",),
        severity="Warning",
        can_be_acknowledged=False,
        attributes=(
            AttrSpec(
                "Reason",
                "EnumerationValue",
                categories=("Reliability",),
                enum=_DOWNTIME_REASONS,
                enum_set="Downtime Reasons",
                value="enum",
            ),
            AttrSpec(
                "Lost Production",
                "Double",
                units="tonne",
                units_abbr="t",
                categories=("Reliability",),
                value="range:1:400",
            ),
            AttrSpec("Process Value", "Double", pi_point="captured", categories=("Process Data",)),
        ),
    ),
    EventFrameTemplateDef(
        name="Alarm",
        description="Process alarm",
        categories=("Alarms",),
        severity="Minor",
        can_be_acknowledged=True,
        attributes=(
            AttrSpec("Priority", "Int32", categories=("Alarms",), value="int:1:4"),
            AttrSpec("Limit", "Double", categories=("Alarms",), value="range:10:100"),
            AttrSpec("Trigger Value", "Double", pi_point="captured", categories=("Process Data",)),
            AttrSpec(
                "Alarm Text",
                "String",
                categories=("Alarms",),
                value="choice:High|High High|Low|Low Low|Deviation",
            ),
        ),
    ),
)

# Event-frame generation: how often each template occurs, how long its frames last, which severities they draw.
EVENT_FRAME_KINDS: tuple[EventFrameKind, ...] = (
    EventFrameKind(template="Batch", weight=0.35, min_s=2 * 3600, max_s=8 * 3600, severities=("None",)),
    EventFrameKind(
        template="Downtime",
        weight=0.25,
        min_s=10 * 60,
        max_s=6 * 3600,
        severities=("Warning", "Minor", "Major"),
    ),
    EventFrameKind(
        template="Alarm",
        weight=0.40,
        min_s=60,
        max_s=2 * 3600,
        severities=("Information", "Warning", "Minor", "Major", "Critical"),
    ),
)
BATCH_PHASES = (
    BatchPhase(name="Charge", share=0.2),
    BatchPhase(name="React", share=0.6),
    BatchPhase(name="Discharge", share=0.2),
)
# A few alarms stand for days (a stuck sensor nobody acknowledges), so there are always some frames in progress.
LONG_ALARM_SHARE = 0.03
LONG_ALARM_S = (DAY_S, 3 * DAY_S)

PROFILES = (
    Profile(
        name="Plant Operations",
        description="Chemical plants: sites, process areas, units and equipment",
        root="Contoso Chemicals",
        sites=(
            "Houston",
            "Rotterdam",
            "Singapore",
            "Antwerp",
            "Ludwigshafen",
            "Baton Rouge",
            "Jurong",
            "Tarragona",
        ),
        areas=("Reaction", "Separation", "Utilities"),
        unit_prefix="Unit",
        equipment=(
            Equipment(template="Pump", tag_prefix="P"),
            Equipment(template="Compressor", tag_prefix="K"),
            Equipment(template="Tank", tag_prefix="T"),
            Equipment(template="Meter", tag_prefix="FT"),
        ),
        with_motor=("Pump", "Compressor"),
        collection="Custody Metering",
        collection_template="Meter",
        collection_prefix="FQ",
    ),
    Profile(
        name="Mining Site",
        description="Open-pit mines: pits, circuits, lines and equipment",
        root="Northern Mining",
        sites=("Pit North", "Pit South", "Pit East", "Pit West", "Ridge", "Valley"),
        areas=("Crushing", "Conveying", "Processing"),
        unit_prefix="Line",
        equipment=(
            Equipment(template="Crusher", tag_prefix="CR"),
            Equipment(template="Conveyor", tag_prefix="CV"),
            Equipment(template="Pump", tag_prefix="P"),
            Equipment(template="Tank", tag_prefix="T"),
        ),
        with_motor=("Crusher", "Conveyor", "Pump"),
        collection="Haul Fleet",
        collection_template="Haul Truck",
        collection_prefix="HT",
    ),
)
