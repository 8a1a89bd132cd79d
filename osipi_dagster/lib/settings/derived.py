"""Derived reads (OSIPI_DERIVED_*): interpolated values and summaries per interval, opt-in per connection.

Unset intervals mean off. Intervals are `<n>s`, `<n>m` or `<n>h` and divide an hour evenly, so every hourly
partition holds whole intervals and reruns of one hour never touch its neighbours (docs/derived.md).
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import ConfigDict, ValidationInfo, field_validator

from osipi_dagster.lib.settings.fields import SettingsError, SettingsFields, label, setting

SUMMARY_TYPES = ("Average", "Minimum", "Maximum", "Total", "Count", "PercentGood", "Range", "StdDev")
DEFAULT_SUMMARY_TYPES = ["Average", "Minimum", "Maximum", "Total", "Count", "PercentGood"]
CALCULATION_BASES = ("TimeWeighted", "EventWeighted", "TimeWeightedContinuous", "TimeWeightedDiscrete")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours"}
HOUR = timedelta(hours=1)


def interval_span(text: str) -> timedelta:
    """`1m` → 1 minute; raises SettingsError for anything else than `<n>s|m|h`."""
    match = _INTERVAL.match(text)
    if not match:
        raise SettingsError(f"{text!r} is not an interval: use <n>s, <n>m or <n>h, e.g. 1m.")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


class DerivedSettings(SettingsFields):
    """Interpolated values every `interpolated_interval` and summaries per `summary_interval` (each unset = off)."""

    model_config = ConfigDict(frozen=True)

    interpolated_interval: str | None = setting(
        None,
        doc="interval of interpolated_values (e.g. 1m; unset = off); divides an hour",
        env="OSIPI_DERIVED_INTERPOLATED_INTERVAL",
    )
    summary_interval: str | None = setting(
        None,
        doc="interval of summary_values (e.g. 1m, 15m, 1h; unset = off); divides an hour",
        env="OSIPI_DERIVED_SUMMARY_INTERVAL",
    )
    summary_types: list[str] = setting(
        doc=f"comma-separated summary types of summary_values ({', '.join(SUMMARY_TYPES)})",
        env="OSIPI_DERIVED_SUMMARY_TYPES",
        default_factory=lambda: list(DEFAULT_SUMMARY_TYPES),
    )
    calculation_basis: str = setting(
        "TimeWeighted",
        doc=f"calculation basis of summary_values ({' | '.join(CALCULATION_BASES)})",
        env="OSIPI_DERIVED_CALCULATION_BASIS",
    )

    @field_validator("interpolated_interval", "summary_interval")
    @classmethod
    def _interval(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        name = label(cls, info.field_name or "", info)
        try:
            span = interval_span(value)
        except SettingsError as err:
            raise SettingsError(f"{name}: {err}") from None
        if span <= timedelta(0) or span > HOUR or HOUR % span:
            raise SettingsError(
                f"{name}={value!r} does not divide an hour: use e.g. 1s, 10s, 1m, 5m, 15m or 1h."
            )
        return value.strip().lower()

    @field_validator("summary_types")
    @classmethod
    def _types(cls, value: list[str], info: ValidationInfo) -> list[str]:
        canonical = {t.lower(): t for t in SUMMARY_TYPES}
        unknown = [t for t in value if t.lower() not in canonical]
        if unknown or not value:
            raise SettingsError(
                f"{label(cls, 'summary_types', info)}={','.join(value)!r} names "
                f"{'no type' if not value else 'unknown types ' + ', '.join(unknown)}: use some of "
                f"{', '.join(SUMMARY_TYPES)}."
            )
        return list(dict.fromkeys(canonical[t.lower()] for t in value))

    @field_validator("calculation_basis")
    @classmethod
    def _basis(cls, value: str, info: ValidationInfo) -> str:
        canonical = {b.lower(): b for b in CALCULATION_BASES}
        if value.lower() not in canonical:
            raise SettingsError(
                f"{label(cls, 'calculation_basis', info)}={value!r} is not one of {', '.join(CALCULATION_BASES)}."
            )
        return canonical[value.lower()]

    @property
    def interpolated_span(self) -> timedelta | None:
        return interval_span(self.interpolated_interval) if self.interpolated_interval else None

    @property
    def summary_span(self) -> timedelta | None:
        return interval_span(self.summary_interval) if self.summary_interval else None
