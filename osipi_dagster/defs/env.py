"""Resource settings from the environment as Dagster EnvVar references.

Only variables that are set become EnvVars (an EnvVar on an unset variable fails at launch), so the code location
loads with an empty environment, and values (secrets included) never appear in run config or the UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg


def env_vars(fields: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, dg.EnvVar]:
    """{resource field: EnvVar(variable)} for each (field, variable) whose variable is set and not blank."""
    env = os.environ if environ is None else environ
    return {field: dg.EnvVar(var) for field, var in fields.items() if (env.get(var) or "").strip()}
