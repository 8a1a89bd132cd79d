"""Settings of the code location itself, not of one connection: where it finds more `PIConnection` YAML files.

They are environment variables only (no YAML field) and are listed in the generated reference after the contract's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, ValidationInfo, field_validator

from osipi_dagster.lib.settings.fields import EnvLoadable, SettingsError, SettingsFields, label, setting


class LocationSettings(EnvLoadable, SettingsFields):
    """The code location's own variables."""

    model_config = ConfigDict(frozen=True)

    connections_dir: str | None = setting(
        None,
        doc="folder of more PIConnection YAML files, one NAME/defs.yaml each, loaded besides osipi_dagster/defs "
        "(docs/connections.md)",
        env="OSIPI_CONNECTIONS_DIR",
        example="./connections",
    )

    @field_validator("connections_dir")
    @classmethod
    def _is_dir(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise SettingsError(
                f"{label(cls, 'connections_dir', info)}={value!r} is not a directory: point it at a folder "
                "holding <name>/defs.yaml files, or unset it."
            )
        return value
