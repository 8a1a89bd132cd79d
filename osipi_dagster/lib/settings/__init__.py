"""The configuration contract: every setting of a PI connection, declared once, validated in one place (no Dagster).

`Settings.from_env()` reads the environment variables, `Settings.from_dict()` a component's YAML; both fail fast
with a `SettingsError` that names the setting and the fix. Dagster resources inherit the same field lists.
"""

from osipi_dagster.lib.settings.derived import DerivedSettings
from osipi_dagster.lib.settings.fields import (
    SettingsError,
    SettingsFields,
    Variable,
    env_of,
    is_secret,
    variables,
)
from osipi_dagster.lib.settings.location import LocationSettings
from osipi_dagster.lib.settings.model import (
    DEFAULT_START_DATE,
    Settings,
    check_lake_uri,
    env_settings,
    validate_environment,
)
from osipi_dagster.lib.settings.quality import LateDataSettings, QualityConfigError, QualityThresholds
from osipi_dagster.lib.settings.sections import ConnectionFields, LakeFields, SelectionFields, StreamSettings

__all__ = [
    "DEFAULT_START_DATE",
    "ConnectionFields",
    "DerivedSettings",
    "LakeFields",
    "LateDataSettings",
    "LocationSettings",
    "QualityConfigError",
    "QualityThresholds",
    "SelectionFields",
    "Settings",
    "SettingsError",
    "SettingsFields",
    "StreamSettings",
    "Variable",
    "check_lake_uri",
    "env_of",
    "env_settings",
    "is_secret",
    "validate_environment",
    "variables",
]
