"""Quality thresholds of pi_timeseries and the late-data audit window (OSIPI_QUALITY_*, OSIPI_LATE_DATA_*).

Validated like every setting: a bad value fails with the variable's (or field's) name and the accepted range.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, ValidationInfo, model_validator

from osipi_dagster.lib.settings.fields import EnvLoadable, SettingsError, SettingsFields, label, setting


class QualityConfigError(SettingsError):
    """An OSIPI_QUALITY_* / OSIPI_LATE_DATA_* setting holds a value that cannot be used."""


def share(default: float, env: str, doc: str, hi: float = 1.0) -> float:
    return setting(default, doc=doc, env=env, ge=0.0, le=hi)


class QualityThresholds(EnvLoadable, SettingsFields):
    """Per-window data quality limits for pi_timeseries (shares are fractions 0..1, per tag unless noted).

    Defaults suit a healthy plant: a tag is flagged when more than 10 % of its values are bad, questionable or
    substituted, or outside its span; a tag is flat-lined when at least `flatline_min_values` good values are all
    identical; the window warns when more than `max_no_data_share` of the tags returned nothing.
    """

    model_config = ConfigDict(frozen=True)
    error: ClassVar[type[SettingsError]] = QualityConfigError

    min_good_share: float = share(0.9, "OSIPI_QUALITY_MIN_GOOD_SHARE", "least share of Good values per tag")
    max_system_share: float = share(
        0.1, "OSIPI_QUALITY_MAX_SYSTEM_SHARE", "most share of system states per tag"
    )
    max_substituted_share: float = share(
        0.1, "OSIPI_QUALITY_MAX_SUBSTITUTED_SHARE", "most share of substituted values per tag"
    )
    max_questionable_share: float = share(
        0.1, "OSIPI_QUALITY_MAX_QUESTIONABLE_SHARE", "most share of questionable values per tag"
    )
    max_out_of_span_share: float = share(
        0.1, "OSIPI_QUALITY_MAX_OUT_OF_SPAN_SHARE", "most share of values outside [zero, zero + span] per tag"
    )
    # PI's span is a display range: values may sit slightly outside it.
    span_tolerance: float = share(
        0.0, "OSIPI_QUALITY_SPAN_TOLERANCE", "tolerance around the span, as a fraction of it", hi=10.0
    )
    flatline_min_values: int = setting(
        10,
        doc="good values a tag needs before all-identical counts as flat-lined",
        env="OSIPI_QUALITY_FLATLINE_MIN_VALUES",
        ge=1,
        le=1_000_000,
    )
    max_no_data_share: float = share(
        0.5, "OSIPI_QUALITY_MAX_NO_DATA_SHARE", "most share of requested tags without any value (window)"
    )
    sample_size: int = setting(
        20,
        doc="offending tags listed in check metadata (the count is always exact)",
        env="OSIPI_QUALITY_SAMPLE_SIZE",
        ge=1,
        le=1_000_000,
    )


class LateDataSettings(EnvLoadable, SettingsFields):
    """What the late-data sensor re-audits.

    `lookback_hours`: materialized hours (counted back from the newest one) compared with PI's per-hour summary
    Count and Total (cheap: one summary call per stream group). `checksum_hours`: the newest of those hours are also
    re-read and compared row by row through a checksum (catches edits that keep count and total, flag changes and
    system states). `watch_event_frames`: every event frame stored in progress is re-checked each tick, whatever its
    age (one batch call for all), until it closes; a frame may stay open for weeks.
    """

    model_config = ConfigDict(frozen=True)
    error: ClassVar[type[SettingsError]] = QualityConfigError
    # An age limit silently dropped frames that stayed open longer; every open frame is watched now.
    REMOVED_ENV: ClassVar[dict[str, str]] = {
        "OSIPI_LATE_DATA_EVENT_FRAME_DAYS": (
            "OSIPI_LATE_DATA_EVENT_FRAME_DAYS is no longer used: every in-progress event frame is re-checked until "
            "it closes, whatever its age. Unset it; set OSIPI_LATE_DATA_EVENT_FRAMES=false to stop watching frames."
        )
    }

    lookback_hours: int = setting(
        24,
        doc="newest materialized hours audited against PI",
        env="OSIPI_LATE_DATA_LOOKBACK_HOURS",
        ge=1,
        le=24 * 90,
    )
    checksum_hours: int = setting(
        6,
        doc="newest audited hours also compared row by row (checksums)",
        env="OSIPI_LATE_DATA_CHECKSUM_HOURS",
        ge=0,
        le=24 * 90,
    )
    watch_event_frames: bool = setting(
        True,
        doc="re-check every event frame stored in progress until it closes",
        env="OSIPI_LATE_DATA_EVENT_FRAMES",
    )

    @model_validator(mode="after")
    def _checksummed_hours_are_audited(self, info: ValidationInfo) -> LateDataSettings:
        if self.checksum_hours > self.lookback_hours:
            cls = type(self)
            raise QualityConfigError(
                f"{label(cls, 'checksum_hours', info)}={self.checksum_hours} exceeds "
                f"{label(cls, 'lookback_hours', info)}={self.lookback_hours}; checksummed hours are a subset of "
                "the audited ones."
            )
        return self
