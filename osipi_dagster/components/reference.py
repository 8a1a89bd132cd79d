"""The `PIConnection` YAML reference in docs/connections.md, rendered from the component's schema (which is the
contract's field list plus the Dagster names); `scripts/connection_reference.py` writes it, a test checks it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from osipi_dagster.components.schema import ConnectionNames, PIConnectionModel
from osipi_dagster.lib.settings import Settings, env_of, is_secret
from osipi_dagster.lib.settings.fields import nested_model
from osipi_dagster.lib.settings.reference import default_text

BEGIN = "connections:begin (generated from the PIConnection schema by scripts/connection_reference.py)"
END = "connections:end"


def type_text(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return (text or str(annotation)).replace("typing.", "").replace("NoneType", "None").replace("|", "\\|")


def rows(model: type[BaseModel], prefix: str = "", settings: type[BaseModel] = Settings) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        nested = nested_model(info.annotation)
        if nested is not None:
            out.extend(rows(nested, f"{prefix}{name}.", nested))
            continue
        source: FieldInfo = settings.model_fields.get(name, info) if not prefix else info
        secret = is_secret(source)
        var = env_of(source)
        if info.is_required() or (name == "pi_web_api_url" and not prefix):
            default = "required"
        else:
            default = default_text(info.get_default(call_default_factory=True))
            default = f"`{default}`" if default else ""
        meaning = (source.description or "").replace("\\", "\\\\").replace("|", "\\|")
        if secret:
            meaning += " (secret: only `{{ env.VAR }}`)"
        kind = "Dagster" if name in ConnectionNames.model_fields and not prefix else "contract"
        env = f"`{var}`" if var else ""
        out.append(
            f"| `{prefix}{name}` | `{type_text(info.annotation)}` | {meaning} | {default} | {env} | {kind} |"
        )
    return out


def yaml_reference() -> str:
    """Markdown rows: YAML field, type, meaning, default, the environment connection's variable, where it acts."""
    header = [
        "| Field | Type | Meaning | Default | Variable (environment connection) | Kind |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + rows(PIConnectionModel))
