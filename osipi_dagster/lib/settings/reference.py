"""The variable reference rendered from the one field list: the README table and the .env.example block.

`scripts/settings_reference.py` writes both between their markers; a test fails when either drifts from `Settings`.
"""

from __future__ import annotations

from datetime import date

from osipi_dagster.lib.settings.fields import Variable, variables
from osipi_dagster.lib.settings.location import LocationSettings
from osipi_dagster.lib.settings.model import Settings

BEGIN = "settings:begin (generated from osipi_dagster/lib/settings by scripts/settings_reference.py)"
END = "settings:end"


def default_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value in (None, [], {}):
        return ""
    if isinstance(value, list | tuple):  # written as the variable takes it: comma-separated
        return ",".join(default_text(v) for v in value)
    return str(value)


def all_variables() -> list[Variable]:
    """The contract's variables, then the code location's own (LocationSettings: no YAML field)."""
    return [*variables(Settings), *variables(LocationSettings)]


def doc(v: Variable) -> str:
    return f"{v.doc}, e.g. {v.example}" if v.example else v.doc


def readme_table() -> str:
    """Markdown rows: variable, YAML field, meaning, default (`required` when there is none)."""
    lines = ["| Variable | Field | Meaning | Default |", "|---|---|---|---|"]
    location = {v.name for v in variables(LocationSettings)}
    for v in all_variables():
        default = default_text(v.default)
        shown = "required" if v.required else (f"`{default}`" if default else "")
        meaning = doc(v).replace("\\", "\\\\").replace("|", "\\|") + (
            " (secret: an `EnvVar` only)" if v.secret else ""
        )
        field = "(code location)" if v.name in location else f"`{v.path}`"
        lines.append(f"| `{v.name}` | {field} | {meaning} | {shown} |")
    return "\n".join(lines)


def env_line(v: Variable) -> str:
    if v.required:
        return f"{v.name}={v.example or ''}"
    return f"# {v.name}={'' if v.secret else default_text(v.default)}"


def env_example() -> str:
    """One commented block per variable; only the required URL is set."""
    return "\n\n".join(f"# {doc(v)}\n{env_line(v)}" for v in all_variables())


def between(text: str, begin: str, end: str, body: str) -> str:
    """`text` with the lines between the marker lines containing `begin` and `end` replaced by `body`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if begin in line)
    stop = next(i for i, line in enumerate(lines) if end in line and i > start)
    return "\n".join([*lines[: start + 1], body, *lines[stop:]]) + "\n"
