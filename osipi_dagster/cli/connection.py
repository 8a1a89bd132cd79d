"""Which connection the CLI talks to: the environment (default) or a `PIConnection` component's defs.yaml.

The YAML's attributes go through `Settings.from_dict`; keys the settings contract does not know (key prefix, group,
schedules, …: the component's own) are ignored here, and `{{ env.VAR }}` references are resolved from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osipi_dagster.lib.settings import Settings, SettingsError, StreamSettings

DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"
_ENV_REF = re.compile(r"\{\{\s*env(?:\.(\w+)|\(\s*['\"](\w+)['\"]\s*\))\s*\}\}")


class ConnectionLoadError(SettingsError):
    """The named connection cannot be found or read; the message says which file and what to do."""


@dataclass(frozen=True)
class Loaded:
    """Validated settings and where they came from (for the report); a component's name and raw attributes."""

    settings: Settings
    source: str
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def lake_root(self) -> str:
        """Where this connection's tables live (the environment's: OSIPI_LAKE_URI)."""
        if self.name is None:
            return self.settings.lake_uri
        return connection_lake_root(self.name, self.settings.lake_uri, self.attributes.get("lake_path"))

    @property
    def spool_directory(self) -> str:
        """This connection's listener spool (the environment's: OSIPI_STREAM_SPOOL)."""
        if self.name is None:
            return self.settings.stream.directory
        return connection_spool_directory(self.name, self.attributes.get("stream"))


def connection_lake_root(name: str, lake_uri: str, lake_path: str | None) -> str:
    """A PIConnection's lake root: one lake, one sub-path per connection (`lake_path`, default its name)."""
    return lake_uri.rstrip("/") + "/" + (lake_path or name).strip("/")


def connection_spool_directory(name: str, stream: Mapping[str, Any] | None) -> str:
    """A PIConnection's spool: `stream.directory` when its YAML sets it, else `<default spool>/<name>`, so each
    connection's listener has a spool of its own."""
    given = (stream or {}).get("directory")
    if given:
        return str(given)
    return StreamSettings.model_fields["directory"].default.rstrip("/") + "/" + name


def resolve_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """`{{ env.VAR }}` (or `{{ env('VAR') }}`) replaced by the variable's value, recursively; unset → error."""
    if isinstance(value, dict):
        return {k: resolve_env(v, environ, f"{where}{k}.") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, environ, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in environ:
            raise ConnectionLoadError(
                f"{where.rstrip('.')} refers to {{{{ env.{name} }}}} but {name} is not set: export it."
            )
        return environ[name]

    return _ENV_REF.sub(sub, value)


def connection_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where connections are looked up by name: osipi_dagster/defs, then OSIPI_CONNECTIONS_DIR when set."""
    env = os.environ if environ is None else environ
    extra = (env.get("OSIPI_CONNECTIONS_DIR") or "").strip()
    return [DEFS_DIR, *([Path(extra)] if extra else [])]


def yaml_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """NAME → its defs.yaml in osipi_dagster/defs or OSIPI_CONNECTIONS_DIR (the first that has it); a path to a
    defs.yaml (or its folder) is taken as is."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml"):
        return given
    if given.is_dir() and (given / "defs.yaml").is_file():
        return given / "defs.yaml"
    candidates = [folder / name / "defs.yaml" for folder in connection_dirs(environ)]
    return next((c for c in candidates if c.is_file()), candidates[0])


def known_connections(environ: Mapping[str, str] | None = None) -> list[str]:
    return sorted(
        p.parent.name
        for folder in connection_dirs(environ)
        for p in folder.glob("*/defs.yaml")
        if "PIConnection" in p.read_text()
    )


def _component_attributes(path: Path) -> dict[str, Any]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ConnectionLoadError(f"{path} is not valid YAML ({exc}): fix the file.") from None
    for doc in documents:
        if str(doc.get("type", "")).endswith("PIConnection"):
            return dict(doc.get("attributes") or {})
    if documents and "attributes" in documents[0]:
        return dict(documents[0]["attributes"] or {})
    raise ConnectionLoadError(
        f"{path} holds no PIConnection component: scaffold one with `dg scaffold defs`."
    )


def settings_fields(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes the settings contract knows (the component's own keys, e.g. key_prefix, are not settings)."""
    return {k: v for k, v in attributes.items() if k in Settings.model_fields}


def load(name: str | None, environ: Mapping[str, str] | None = None) -> Loaded:
    """The settings of connection `name`, or of the environment when `name` is None."""
    env = os.environ if environ is None else environ
    if name is None:
        if not env.get("PI_WEB_API_URL"):
            raise ConnectionLoadError(
                "PI_WEB_API_URL is not set: export it (and PI_AUTH_METHOD, …), or pass --connection NAME."
            )
        return Loaded(Settings.from_env(env), "environment")
    path = yaml_path(name, env)
    if not path.is_file():
        names = ", ".join(known_connections(env)) or "none yet"
        raise ConnectionLoadError(
            f"no connection {name!r}: {path} does not exist (known: {names}); "
            f"scaffold it with `dg scaffold defs osipi_dagster.PIConnection {name}`."
        )
    raw = _component_attributes(path)
    attributes = resolve_env(settings_fields(raw), env)
    own = {k: resolve_env(v, env, f"{k}.") for k, v in raw.items() if k in ("lake_path", "stream")}
    return Loaded(Settings.from_dict(attributes), str(path), path.parent.name, own)
