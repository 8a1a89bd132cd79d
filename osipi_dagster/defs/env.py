"""Resource settings from the environment: the configuration contract's variables as resource field values.

Secrets and required settings become Dagster `EnvVar` references, resolved at launch, so their values never appear
in run config, the UI or logs (an unset secret is left out: an EnvVar on an unset variable fails at launch; an unset
required one stays, so the launch error names it). Every other set variable is parsed now, as its typed value, and
shows in the UI as such; a bad one fails the code location's load with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from osipi_dagster.lib.settings import env_of, is_secret


def env_vars(fields: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, dg.EnvVar]:
    """{resource field: EnvVar(variable)} for each (field, variable) whose variable is set and not blank."""
    env = os.environ if environ is None else environ
    return {field: dg.EnvVar(var) for field, var in fields.items() if (env.get(var) or "").strip()}


def contract_values(resource: type[dg.ConfigurableResource], values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values for `resource`, which inherits field lists of the contract, from `values` (the typed values of
    the set variables, `osipi_dagster.lib.settings.env_settings`). Nested sections (dg.Config fields) recurse."""
    out: dict[str, Any] = {}
    for name, info in resource.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, dg.Config):
            out[name] = section(**contract_values(section, values.get(name) or {}))  # type: ignore[arg-type]
            continue
        var = env_of(info)
        if var is None:
            continue
        if is_secret(info) or info.is_required():
            if name in values or info.is_required():
                out[name] = dg.EnvVar(var)
        elif name in values:
            out[name] = values[name]
    return out
