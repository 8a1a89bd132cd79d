"""The osipi-dagster code location: loads the defs/ folder and applies platform-wide policies.

Keep this file tiny; Dagster wiring lives in osipi_dagster/defs/<domain>/.
"""

from datetime import timedelta
from pathlib import Path

import dagster as dg

from osipi_dagster.lib.settings import LocationSettings, validate_environment

# Every asset should have landed within a day and a half; assets that need a tighter policy set their own.
PLATFORM_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)


@dg.definitions
def defs() -> dg.Definitions:
    # Fail fast: a set-but-invalid variable stops the load with its name and the fix, before any run.
    validate_environment()
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # More PIConnections from a folder outside the package (OSIPI_CONNECTIONS_DIR, docs/connections.md).
    folder = LocationSettings.from_env().connections_dir
    if folder:
        from osipi_dagster.components.folder import connections_defs

        loaded = dg.Definitions.merge(loaded, connections_defs(Path(folder)))
    return loaded.map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, PLATFORM_FRESHNESS, overwrite_existing=False)
    )
