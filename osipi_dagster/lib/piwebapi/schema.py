"""Polars schemas of every frame the PI Web API client returns (values, points, AF elements/attributes, event frames).

One schema per table, shared by every point type, so the lake writer and the Dagster assets never branch on type.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

# Time-series values, one row per value, whatever the point type:
#   value        Float64 for numeric points (Int16/Int32/Float16/32/64). For Timestamp points the epoch seconds
#                (fractional) of the value. For Digital points the state code (so plots still work). Null for
#                String points, system states on numeric points, and values the server marked with Errors.
#   value_text   String points: the text. Digital points: the state name. System states (any point type): the
#                state name (e.g. "Shutdown"). Timestamp points: the ISO 8601 text exactly as the server sent it.
#   digital_code State code of digital and system-state values (e.g. 254), else null.
#   is_system    True for SYSTEM-set states (IsSystem, or codes 193..320 on servers that omit IsSystem).
#   ordinal      0-based position among the values of one stream sharing one timestamp, in archive order;
#                (web_id, timestamp, ordinal) is the unique key of a recorded value.
#   good/questionable/substituted/annotated  Status flags; a missing Annotated is False, a missing Good is True.
#   units        UnitsAbbreviation of the value (falls back to the stream's units).
VALUES_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "timestamp": UTC_US,
        "ordinal": pl.Int32,
        "value": pl.Float64,
        "value_text": pl.Utf8,
        "digital_code": pl.Int32,
        "is_system": pl.Boolean,
        "good": pl.Boolean,
        "questionable": pl.Boolean,
        "substituted": pl.Boolean,
        "annotated": pl.Boolean,
        "units": pl.Utf8,
    }
)

# Summary values (GET streamsets/summary): one row per (stream, summary type, interval).
SUMMARY_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "summary_type": pl.Utf8,
        "timestamp": UTC_US,
        "value": pl.Float64,
        "value_text": pl.Utf8,
        "good": pl.Boolean,
        "units": pl.Utf8,
    }
)

# recorded_counts(): number of recorded values per stream in a window (summary Count), for completeness audits.
COUNTS_SCHEMA = pl.Schema({"web_id": pl.Utf8, "count": pl.Int64})

# pi_points: PI point metadata (GET dataservers/{id}/points).
POINTS_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "server": pl.Utf8,
        "name": pl.Utf8,
        "path": pl.Utf8,
        "descriptor": pl.Utf8,
        "point_class": pl.Utf8,
        "point_type": pl.Utf8,
        "digital_set": pl.Utf8,
        "engineering_units": pl.Utf8,
        "step": pl.Boolean,
        "future": pl.Boolean,
        "span": pl.Float64,
        "zero": pl.Float64,
        "display_digits": pl.Int32,
        "point_id": pl.Int64,
    }
)

# af_elements: the AF element hierarchy, breadth-first; depth 0 = children of the database.
ELEMENTS_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "id": pl.Utf8,
        "name": pl.Utf8,
        "description": pl.Utf8,
        "path": pl.Utf8,
        "parent_web_id": pl.Utf8,
        "depth": pl.Int32,
        "template": pl.Utf8,
        "categories": pl.List(pl.Utf8),
        "has_children": pl.Boolean,
        "database": pl.Utf8,
    }
)

# af_attributes: element attributes (child attributes included), PI point data references resolved to the point.
ATTRIBUTES_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "element_web_id": pl.Utf8,
        "parent_attribute_web_id": pl.Utf8,
        "name": pl.Utf8,
        "path": pl.Utf8,
        "type": pl.Utf8,
        "units": pl.Utf8,
        "data_reference": pl.Utf8,
        "config_string": pl.Utf8,
        "point_path": pl.Utf8,
        "point_web_id": pl.Utf8,
        "static_value": pl.Utf8,
        "categories": pl.List(pl.Utf8),
        "is_excluded": pl.Boolean,
        "is_hidden": pl.Boolean,
    }
)

# event_frames: end is null while the frame is in progress (AF's open end 9999-12-31 maps to null).
EVENT_FRAMES_SCHEMA = pl.Schema(
    {
        "web_id": pl.Utf8,
        "id": pl.Utf8,
        "name": pl.Utf8,
        "description": pl.Utf8,
        "path": pl.Utf8,
        "template": pl.Utf8,
        "start": UTC_US,
        "end": UTC_US,
        "in_progress": pl.Boolean,
        "severity": pl.Utf8,
        "categories": pl.List(pl.Utf8),
        "ref_element_web_ids": pl.List(pl.Utf8),
        "primary_ref_element_web_id": pl.Utf8,
        "parent_web_id": pl.Utf8,
        "depth": pl.Int32,
        "database": pl.Utf8,
    }
)

# ef_attributes: event-frame attributes with their captured value (the value at the frame's end, or now if open).
EF_ATTRIBUTES_SCHEMA = pl.Schema(
    {
        "event_frame_web_id": pl.Utf8,
        "web_id": pl.Utf8,
        "name": pl.Utf8,
        "path": pl.Utf8,
        "type": pl.Utf8,
        "units": pl.Utf8,
        "data_reference": pl.Utf8,
        "config_string": pl.Utf8,
        "timestamp": UTC_US,
        "value": pl.Float64,
        "value_text": pl.Utf8,
        "digital_code": pl.Int32,
        "is_system": pl.Boolean,
        "good": pl.Boolean,
    }
)


def empty(schema: pl.Schema) -> pl.DataFrame:
    """A zero-row frame with exactly `schema`."""
    return pl.DataFrame(schema=schema)
