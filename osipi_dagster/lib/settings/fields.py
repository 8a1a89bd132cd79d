"""Settings fields that know their environment variable: declared once, read from the environment or from a dict.

Errors name the field, its variable and the fix. In environment mode a field is named by its variable
(`PI_VERIFY_TLS='maybe' is not a boolean`), from a dict (a component's YAML) by its path and variable.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ENV_MODE = "env"
_BOOLS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


class SettingsError(ValueError):
    """A missing or invalid setting; the message names the field or variable and how to fix it."""


def setting(
    default: Any = PydanticUndefined,
    *,
    doc: str,
    env: str | None = None,
    secret: bool = False,
    example: str | None = None,
    default_factory: Any = None,
    **constraints: Any,
) -> Any:
    """A field of the contract: `doc` is its description (UI, README, YAML schema), `env` its environment variable,
    `secret` keeps it out of repr() and error messages (resources take it only as an EnvVar reference)."""
    extra: dict[str, Any] = {k: v for k, v in (("env", env), ("example", example)) if v is not None}
    if secret:
        extra["secret"] = True
    if default_factory is not None:
        return Field(default_factory=default_factory, description=doc, json_schema_extra=extra, **constraints)
    return Field(default, description=doc, json_schema_extra=extra, **constraints)


def extra_of(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def env_of(info: FieldInfo) -> str | None:
    return extra_of(info).get("env")


def is_secret(info: FieldInfo) -> bool:
    return bool(extra_of(info).get("secret"))


def bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            lo = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        elif isinstance(m, annotated_types.Le | annotated_types.Lt):
            hi = m.le if isinstance(m, annotated_types.Le) else m.lt
    return lo, hi  # type: ignore[return-value]


def accepted_range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    return f">= {lo}" if lo is not None else (f"<= {hi}" if hi is not None else "")


def bare(annotation: Any) -> Any:
    """`X | None` → X."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def nested_model(annotation: Any) -> type[BaseModel] | None:
    kind = bare(annotation)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


class SettingsFields(BaseModel):
    """Base of every field list: unknown keys are errors, secrets never appear in repr()."""

    model_config = ConfigDict(extra="forbid")

    def __repr_args__(self):  # type: ignore[override]
        fields = type(self).model_fields
        for key, value in super().__repr_args__():
            secret = key in fields and is_secret(fields[key])
            yield key, ("***" if secret and value else value)


def label(model: type[BaseModel], name: str, info: ValidationInfo | None) -> str:
    """How an error names a field: its variable when read from the environment, else `field (VARIABLE)`."""
    env = env_of(model.model_fields[name])
    if info is not None and (info.context or {}).get(ENV_MODE) and env:
        return env
    return f"{name} ({env})" if env else name


# ---------------------------------------------------------------------------------------------------------------
# Environment strings → typed values


def parse_env_value(var: str, raw: str, info: FieldInfo, error: type[SettingsError]) -> Any:
    """One variable's string as the field's type; errors name the variable and the accepted form."""
    kind = bare(info.annotation)
    shown = "(hidden)" if is_secret(info) else repr(raw)
    if kind is bool:
        low = raw.lower()
        if low not in _BOOLS:
            raise error(f"{var}={shown} is not a boolean: use true or false.")
        return _BOOLS[low]
    if kind in (int, float):
        what = "an integer" if kind is int else "a number"
        try:
            return kind(raw)
        except ValueError:
            where = accepted_range(*bounds(info))
            raise error(f"{var}={shown} is not {what}: use {what}{' ' + where if where else ''}.") from None
    if kind is date:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise error(f"{var}={shown} is not a date: use YYYY-MM-DD, e.g. 2024-01-01.") from None
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if raw.lower() not in choices:
            raise error(f"{var}={shown} is not one of {', '.join(choices)}.")
        return raw.lower()
    if get_origin(kind) is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if get_origin(kind) is dict:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise error(f"{var} is not valid JSON ({exc.msg}): use a JSON object.") from None
        if not isinstance(parsed, dict):
            raise error(f"{var} must be a JSON object of string keys and values.")
        return {str(k): str(v) for k, v in parsed.items()}
    return raw


def env_values(
    model: type[BaseModel], environ: Mapping[str, str], raw: dict[tuple[str, ...], str] | None = None
) -> dict[str, Any]:
    """The typed values of every variable of `model` (nested sections included) that is set and not blank.

    `raw` collects each value's original string by field path, so later errors can quote what was set.
    """
    error = getattr(model, "error", SettingsError)
    for var, message in getattr(model, "REMOVED_ENV", {}).items():
        if environ.get(var, "").strip():
            raise error(message)
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        section = nested_model(info.annotation)
        if section is not None:
            inner: dict[tuple[str, ...], str] = {}
            found = env_values(section, environ, inner)
            if found:
                values[name] = found
            if raw is not None:
                raw.update({(name, *path): text for path, text in inner.items()})
            continue
        var = env_of(info)
        text = (environ.get(var) or "").strip() if var else ""
        if text:
            values[name] = parse_env_value(var, text, info, error)  # type: ignore[arg-type]
            if raw is not None:
                raw[(name,)] = text
    return values


# ---------------------------------------------------------------------------------------------------------------
# pydantic errors → one SettingsError naming fields and variables


def field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel], str] | None:
    """The (model, field name) a pydantic error location points at (list indexes and dict keys dropped)."""
    current: type[BaseModel] | None = model
    found = None
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            break
        found = (current, part)
        current = nested_model(current.model_fields[part].annotation)
    return found


def describe_error(
    model: type[BaseModel], err: Any, env_mode: bool, raw: Mapping[tuple[str, ...], str]
) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "value_error" and isinstance((err.get("ctx") or {}).get("error"), SettingsError):
        return str(err["ctx"]["error"])  # our validators' messages already name what they check
    path = ".".join(str(p) for p in loc) or model.__name__
    target = field_at(model, loc)
    if err["type"] == "extra_forbidden":
        parent = field_at(model, loc[:-1])
        section = model if parent is None else nested_model(parent[0].model_fields[parent[1]].annotation)
        known = ", ".join((section or model).model_fields)
        return f"{path} is not a setting: remove it (known: {known})."
    if target is None:
        return f"{path}: {err['msg']}."
    owner, name = target
    info = owner.model_fields[name]
    env = env_of(info)
    who = env if env_mode and env else (f"{path} ({env})" if env else path)
    if err["type"] == "missing":
        example = extra_of(info).get("example", "...")
        how = f"{env}={example}" if env_mode and env else f"{path}: {example}"
        return f"{who} is not set: set it to the {info.description}, e.g. {how}."
    shown = "" if is_secret(info) else "=" + (repr(raw[loc]) if loc in raw else repr(err.get("input")))
    lo, hi = bounds(info)
    if err["type"] in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{who}{shown} is out of range: use a value {accepted_range(lo, hi)}."
    return f"{who}{shown} is not valid: {err['msg']}."


class EnvLoadable:
    """`from_env` / `from_dict` for a settings model: both validate and raise `error` naming fields and variables."""

    error: ClassVar[type[SettingsError]] = SettingsError
    # Variables that no longer exist, with the message telling what replaced them.
    REMOVED_ENV: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        raw: dict[tuple[str, ...], str] = {}
        values = env_values(cls, env, raw)  # type: ignore[arg-type]
        return cls.validated(values, env_mode=True, raw=raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """From a mapping such as a component's YAML attributes; errors name the field path and its variable."""
        return cls.validated(dict(data))

    @classmethod
    def validated(
        cls,
        data: Mapping[str, Any],
        *,
        env_mode: bool = False,
        raw: Mapping[tuple[str, ...], str] | None = None,
        ignore_missing: tuple[str, ...] = (),
    ) -> Self:
        """Validate `data`. `ignore_missing` names required top-level fields whose absence is no error: the result
        is then None (used to check a partial environment)."""
        try:
            return cls.model_validate(data, context={ENV_MODE: env_mode})  # type: ignore[attr-defined]
        except ValidationError as exc:
            errors = [
                e
                for e in exc.errors()
                if not (e["type"] == "missing" and len(e["loc"]) == 1 and e["loc"][0] in ignore_missing)
            ]
            if not errors:
                return None  # type: ignore[return-value]
            messages = [describe_error(cls, e, env_mode, raw or {}) for e in errors]  # type: ignore[arg-type]
            raise cls.error("\n".join(messages)) from None


@dataclass(frozen=True)
class Variable:
    """One environment variable of the contract, for the README / .env.example reference."""

    name: str
    path: str
    doc: str
    default: Any
    secret: bool
    required: bool
    example: str | None


def variables(model: type[BaseModel], prefix: str = "") -> Iterator[Variable]:
    """Every field of `model` that has an environment variable, nested sections included, in declaration order."""
    for name, info in model.model_fields.items():
        section = nested_model(info.annotation)
        if section is not None:
            yield from variables(section, f"{prefix}{name}.")
            continue
        env = env_of(info)
        if env:
            required = info.is_required()
            default = None if required else info.get_default(call_default_factory=True)
            doc = info.description or ""
            yield Variable(
                env, prefix + name, doc, default, is_secret(info), required, extra_of(info).get("example")
            )
