"""What each lake table and column means: the one source for catalog comments (Unity Catalog) and docs/tables.md.

docs/tables.md quotes these texts (its `pi_timeseries` and SCD2 column tables are checked against them by
osipi_dagster_tests/spark/test_uc_descriptions.py), so change a meaning here and the doc follows.
"""

from __future__ import annotations

SCD2_COLUMNS: dict[str, str] = {
    "valid_from": "snapshot time at which this version was first seen",
    "valid_to": "snapshot time at which it changed or disappeared; null while current",
    "is_current": "`valid_to is null`",
    "is_deleted": "this version was closed because the `web_id` disappeared from a snapshot",
    "row_hash": "stable hash of the compared columns (how a change is detected)",
}

_FLAGS = "PI status flags (good, questionable, substituted, annotated)"

TIMESERIES_COLUMNS: dict[str, str] = {
    "web_id": "PI point WebID (unique across data servers)",
    "timestamp": "event time",
    "ordinal": "0-based position among values of one stream sharing a timestamp",
    "value": (
        "numeric value; digital state code for digital points; epoch seconds for Timestamp points; "
        "null for strings and system states"
    ),
    "value_text": "string value, digital/system state name, or timestamp text",
    "digital_code": "state code of digital and system-state values",
    "is_system": "value is a system state (e.g. `Shutdown`, `I/O Timeout`)",
    "good": _FLAGS,
    "questionable": _FLAGS,
    "substituted": _FLAGS,
    "annotated": _FLAGS,
    "units": "units abbreviation",
    "tag": "PI point name at ingestion time (from `pi_points`)",
    "ingested_at": "when the run wrote the window (same for all rows of a run)",
    "source": (
        "how the row arrived: `recorded` (archive read by the hourly asset) or `stream` (landed by the streaming "
        "sensor, defs/streaming); rows written before the column existed read as null and count as `recorded`"
    ),
    "date": "UTC date of `timestamp`; the Delta partition column",
}

POINTS_COLUMNS: dict[str, str] = {
    "web_id": "PI point WebID (unique across data servers)",
    "server": "data server name",
    "name": "PI point name (tag)",
    "path": "point path, `\\\\SERVER\\tag`",
    "descriptor": "point descriptor",
    "point_class": "point class (e.g. classic)",
    "point_type": "point type (Float32, Int32, Digital, String, Timestamp, ...)",
    "digital_set": "digital state set of digital points",
    "engineering_units": "engineering units",
    "step": "values are stepped (no interpolation between them)",
    "future": "future-data point",
    "span": "point span",
    "zero": "point zero",
    "display_digits": "display digits",
    "point_id": "point id on its data server",
    **SCD2_COLUMNS,
}

ELEMENTS_COLUMNS: dict[str, str] = {
    "web_id": "AF element WebID",
    "id": "AF element id (GUID)",
    "name": "element name",
    "description": "element description",
    "path": "full AF path",
    "parent_web_id": "WebID of the parent element; null for the roots of each database",
    "depth": "0 for top-level elements",
    "template": "element template name",
    "categories": "element categories",
    "has_children": "the element has child elements",
    "database": "AF database path",
    **SCD2_COLUMNS,
}

ATTRIBUTES_COLUMNS: dict[str, str] = {
    "web_id": "AF attribute WebID",
    "element_web_id": "WebID of the owning element",
    "parent_attribute_web_id": "WebID of the parent attribute for child attributes",
    "name": "attribute name",
    "path": "full AF path",
    "type": "value type",
    "units": "default units",
    "data_reference": "data reference plug-in (e.g. PI Point)",
    "config_string": "data reference configuration string",
    "point_path": "path of the referenced PI point",
    "point_web_id": (
        "the resolved PI point for PI Point data references; join to `pi_points.web_id` and `pi_timeseries.web_id`"
    ),
    "static_value": "value of attributes without a data reference",
    "categories": "attribute categories",
    "is_excluded": "attribute is excluded",
    "is_hidden": "attribute is hidden",
    "database": "AF database path (from the owning element)",
    **SCD2_COLUMNS,
}

EVENT_FRAMES_COLUMNS: dict[str, str] = {
    "web_id": "event frame WebID",
    "id": "event frame id (GUID)",
    "name": "event frame name",
    "description": "event frame description",
    "path": "full AF path",
    "template": "event frame template name",
    "start": "start time",
    "end": "end time; null while the frame is in progress",
    "in_progress": "the frame had not ended when read",
    "severity": "severity",
    "categories": "event frame categories",
    "ref_element_web_ids": "WebIDs of the referenced elements",
    "primary_ref_element_web_id": "WebID of the primary referenced element",
    "parent_web_id": "WebID of the parent event frame",
    "depth": "0 for top-level event frames",
    "database": "AF database path",
    "ingested_at": "when the run wrote the window",
    "date": "UTC date of `start`; the Delta partition column",
}

EF_ATTRIBUTES_COLUMNS: dict[str, str] = {
    "event_frame_web_id": "WebID of the event frame",
    "web_id": "attribute WebID",
    "name": "attribute name",
    "path": "full AF path",
    "type": "value type",
    "units": "units",
    "data_reference": "data reference plug-in",
    "config_string": "data reference configuration string",
    "timestamp": "time of the captured value; 1970-01-01T00:00:00Z for a static attribute (PI reports those at the epoch)",
    "value": "captured numeric value (digital state code for digital values)",
    "value_text": "captured string value or state name",
    "digital_code": "state code of digital and system-state values",
    "is_system": "value is a system state",
    "good": _FLAGS,
    "event_frame_start": "start of the event frame (the window column)",
    "database": "AF database path",
    "ingested_at": "when the run wrote the window",
    "date": "UTC date of `event_frame_start`; the Delta partition column",
}

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "pi_timeseries": (
        "PI recorded values, one row per archive event; unique key (web_id, timestamp, ordinal). Written by the "
        "osipi-dagster asset pi/pi_timeseries (replace window on timestamp, hourly).",
        TIMESERIES_COLUMNS,
    ),
    "pi_points": ("PI point metadata with SCD2 history (merge on web_id, daily).", POINTS_COLUMNS),
    "af_elements": ("AF element hierarchy with SCD2 history (merge on web_id, daily).", ELEMENTS_COLUMNS),
    "af_attributes": (
        "AF element attributes, PI point references resolved, with SCD2 history (merge on web_id, daily).",
        ATTRIBUTES_COLUMNS,
    ),
    "event_frames": (
        "AF event frames by the UTC day they start in (replace window on start).",
        EVENT_FRAMES_COLUMNS,
    ),
    "event_frame_attributes": (
        "Attributes of the day's event frames with their captured values (replace window on event_frame_start).",
        EF_ATTRIBUTES_COLUMNS,
    ),
}


def table_comment(table: str) -> str | None:
    """The catalog comment of a lake table, or None for a table this project does not describe."""
    entry = TABLES.get(table)
    return entry[0] if entry else None


def column_comments(table: str) -> dict[str, str]:
    """{column: comment} of a lake table (empty for an unknown table)."""
    entry = TABLES.get(table)
    return dict(entry[1]) if entry else {}
