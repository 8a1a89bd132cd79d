"""Quality thresholds and late-data audit settings, read from the environment (OSIPI_QUALITY_*, OSIPI_LATE_DATA_*).

Plain dataclasses with validated parsing: every bad value fails with the variable's name and the accepted range.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar


class QualityConfigError(ValueError):
    """An OSIPI_QUALITY_* / OSIPI_LATE_DATA_* variable holds a value that cannot be used."""


def _number(
    env: Mapping[str, str], var: str, default: float, lo: float, hi: float, *, integer: bool
) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise QualityConfigError(f"{var}={raw!r} is not {kind}; use {kind} in [{lo}, {hi}].") from None
    if not lo <= value <= hi:
        raise QualityConfigError(f"{var}={raw!r} is out of range; use a value in [{lo}, {hi}].")
    return value


@dataclass(frozen=True)
class QualityThresholds:
    """Per-window data quality limits for pi_timeseries (shares are fractions 0..1, per tag unless noted).

    Defaults suit a healthy plant: a tag is flagged when more than 10 % of its values are bad, questionable or
    substituted, or outside its span; a tag is flat-lined when at least `flatline_min_values` good values are all
    identical; the window warns when more than `max_no_data_share` of the tags returned nothing.
    """

    min_good_share: float = 0.9
    max_system_share: float = 0.1
    max_substituted_share: float = 0.1
    max_questionable_share: float = 0.1
    max_out_of_span_share: float = 0.1
    # Values may sit slightly outside [zero, zero + span] (PI's span is a display range): tolerance as a fraction.
    span_tolerance: float = 0.0
    flatline_min_values: int = 10
    max_no_data_share: float = 0.5
    # How many offending tags to list in check metadata (the count is always exact).
    sample_size: int = 20

    ENV: ClassVar[dict[str, str]] = {
        "min_good_share": "OSIPI_QUALITY_MIN_GOOD_SHARE",
        "max_system_share": "OSIPI_QUALITY_MAX_SYSTEM_SHARE",
        "max_substituted_share": "OSIPI_QUALITY_MAX_SUBSTITUTED_SHARE",
        "max_questionable_share": "OSIPI_QUALITY_MAX_QUESTIONABLE_SHARE",
        "max_out_of_span_share": "OSIPI_QUALITY_MAX_OUT_OF_SPAN_SHARE",
        "span_tolerance": "OSIPI_QUALITY_SPAN_TOLERANCE",
        "flatline_min_values": "OSIPI_QUALITY_FLATLINE_MIN_VALUES",
        "max_no_data_share": "OSIPI_QUALITY_MAX_NO_DATA_SHARE",
        "sample_size": "OSIPI_QUALITY_SAMPLE_SIZE",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QualityThresholds:
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for f in fields(cls):
            default = f.default
            integer = isinstance(default, int) and not isinstance(default, bool)
            hi = 1_000_000.0 if integer else (10.0 if f.name == "span_tolerance" else 1.0)
            lo = 1.0 if integer else 0.0
            values[f.name] = _number(env, cls.ENV[f.name], default, lo, hi, integer=integer)  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LateDataSettings:
    """What the late-data sensor re-audits.

    `lookback_hours`: materialized hours (counted back from the newest one) compared with PI's per-hour summary
    Count and Total (cheap: one summary call per stream group). `checksum_hours`: the newest of those hours are also
    re-read and compared row by row through a checksum (catches edits that keep count and total, flag changes and
    system states). `watch_event_frames`: every event frame stored in progress is re-checked each tick, whatever its
    age (one batch call for all), until it closes; a frame may stay open for weeks.
    """

    lookback_hours: int = 24
    checksum_hours: int = 6
    watch_event_frames: bool = True

    ENV: ClassVar[dict[str, str]] = {
        "lookback_hours": "OSIPI_LATE_DATA_LOOKBACK_HOURS",
        "checksum_hours": "OSIPI_LATE_DATA_CHECKSUM_HOURS",
        "watch_event_frames": "OSIPI_LATE_DATA_EVENT_FRAMES",
    }
    # Replaced by OSIPI_LATE_DATA_EVENT_FRAMES: an age limit silently dropped frames that stayed open longer.
    REMOVED: ClassVar[str] = "OSIPI_LATE_DATA_EVENT_FRAME_DAYS"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LateDataSettings:
        env = os.environ if environ is None else environ
        if env.get(cls.REMOVED, "").strip():
            raise QualityConfigError(
                f"{cls.REMOVED} is no longer used: every in-progress event frame is re-checked until it closes, "
                f"whatever its age. Unset it; set {cls.ENV['watch_event_frames']}=false to stop watching frames."
            )
        lookback = int(_number(env, cls.ENV["lookback_hours"], 24, 1, 24 * 90, integer=True))
        checksum = int(_number(env, cls.ENV["checksum_hours"], 6, 0, 24 * 90, integer=True))
        if checksum > lookback:
            raise QualityConfigError(
                f"OSIPI_LATE_DATA_CHECKSUM_HOURS={checksum} exceeds OSIPI_LATE_DATA_LOOKBACK_HOURS={lookback}; "
                "checksummed hours are a subset of the audited ones."
            )
        var = cls.ENV["watch_event_frames"]
        raw = env.get(var, "").strip().lower()
        if raw not in ("", "true", "false", "1", "0", "yes", "no"):
            raise QualityConfigError(f"{var}={raw!r} is not a boolean; use true or false.")
        watch = raw in ("", "true", "1", "yes")
        return cls(lookback_hours=lookback, checksum_hours=checksum, watch_event_frames=watch)
