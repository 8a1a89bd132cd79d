"""Register the lake's Delta tables in Unity Catalog as external tables, over the REST API that Databricks and the
open-source Unity Catalog server share (`/api/2.1/unity-catalog/...`).

Idempotent: a table whose registration already matches (location, format, columns with types and comments, table
comment, our properties) is left alone; one that differs (a column added by schema evolution, a new comment) is
dropped and created again, which for an EXTERNAL table touches metadata only, never the data files.
Column types come from the Delta log (Delta's schema JSON is Spark's, which is what Unity Catalog stores);
comments from `descriptions.py`. Tags are written as table properties (`source=osipi`): the open-source server
has no tag API, and Databricks shows properties beside tags.

No Dagster here. The token is sent as a bearer header and kept out of repr() and every message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx
from deltalake import DeltaTable

from .descriptions import column_comments, table_comment

API_PATH = "/api/2.1/unity-catalog"
DEFAULT_PROPERTIES: dict[str, str] = {"source": "osipi", "writer": "osipi-dagster"}

_PRIMITIVE_TEXT = {
    "string": "string",
    "long": "bigint",
    "integer": "int",
    "short": "smallint",
    "byte": "tinyint",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "binary": "binary",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
}
_TYPE_NAME = {
    "string": "STRING",
    "long": "LONG",
    "integer": "INT",
    "short": "SHORT",
    "byte": "BYTE",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "binary": "BINARY",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP_NTZ",
    "array": "ARRAY",
    "map": "MAP",
    "struct": "STRUCT",
}

Action = Literal["created", "unchanged", "replaced"]


# The opt-in registration's own variables (README lists them; a test checks it). DATABRICKS_HOST/DATABRICKS_TOKEN
# are Databricks' own names, read when the OSIPI_UC_ ones are unset.
UC_ENV = ("OSIPI_UC_CATALOG", "OSIPI_UC_SCHEMA", "OSIPI_UC_URL", "OSIPI_UC_TOKEN", "OSIPI_UC_VERIFY_TLS")


class UnityCatalogError(RuntimeError):
    """A Unity Catalog call failed; the message names the call, the status and the server's error_code."""


@dataclass(frozen=True)
class UCTarget:
    """Where to register: endpoint, credentials, catalog and schema."""

    url: str
    catalog: str
    schema: str
    token: str | None = field(default=None, repr=False)
    verify_tls: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UCTarget | None:
        """From OSIPI_UC_CATALOG/OSIPI_UC_SCHEMA (opt-in: None when OSIPI_UC_CATALOG is unset), OSIPI_UC_URL or
        DATABRICKS_HOST, OSIPI_UC_TOKEN or DATABRICKS_TOKEN."""
        env = os.environ if environ is None else environ
        catalog = (env.get("OSIPI_UC_CATALOG") or "").strip()
        if not catalog:
            return None
        url = (env.get("OSIPI_UC_URL") or env.get("DATABRICKS_HOST") or "").strip()
        if not url:
            raise ValueError(
                "OSIPI_UC_CATALOG is set but no Unity Catalog endpoint is: set OSIPI_UC_URL (the open-source "
                "server, e.g. http://127.0.0.1:8080) or DATABRICKS_HOST (the workspace URL)"
            )
        token = (env.get("OSIPI_UC_TOKEN") or env.get("DATABRICKS_TOKEN") or "").strip() or None
        schema = (env.get("OSIPI_UC_SCHEMA") or "pi").strip()
        verify = (env.get("OSIPI_UC_VERIFY_TLS") or "true").strip().lower() not in {"false", "0", "no"}
        return cls(url=url, catalog=catalog, schema=schema, token=token, verify_tls=verify)


@dataclass(frozen=True)
class RegisterResult:
    full_name: str
    action: Action
    storage_location: str
    columns: int


def column_infos(
    delta_schema_json: Mapping[str, Any], partition_columns: list[str], comments: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Unity Catalog ColumnInfo dicts for a Delta schema (Spark StructType JSON), with comments and partitions."""
    infos: list[dict[str, Any]] = []
    for position, fld in enumerate(delta_schema_json["fields"]):
        name = fld["name"]
        comment = comments.get(name)
        metadata = dict(fld.get("metadata") or {})
        if comment:
            metadata["comment"] = comment
        info: dict[str, Any] = {
            "name": name,
            "type_text": type_text(fld["type"]),
            "type_json": json.dumps({**fld, "metadata": metadata}, separators=(",", ":")),
            "type_name": type_name(fld["type"]),
            "position": position,
            "nullable": bool(fld.get("nullable", True)),
        }
        if comment:
            info["comment"] = comment
        if name in partition_columns:
            info["partition_index"] = partition_columns.index(name)
        dtype = fld["type"]
        if isinstance(dtype, str) and dtype.startswith("decimal("):
            precision, scale = dtype[len("decimal(") : -1].split(",")
            info["type_precision"], info["type_scale"] = int(precision), int(scale)
        infos.append(info)
    return infos


def type_text(dtype: str | Mapping[str, Any]) -> str:
    """Spark's catalogString of a Delta/Spark JSON type: `bigint`, `array<string>`, `struct<a:int>`..."""
    if isinstance(dtype, str):
        if dtype.startswith("decimal("):
            return dtype
        return _PRIMITIVE_TEXT[dtype]
    kind = dtype["type"]
    if kind == "array":
        return f"array<{type_text(dtype['elementType'])}>"
    if kind == "map":
        return f"map<{type_text(dtype['keyType'])},{type_text(dtype['valueType'])}>"
    if kind == "struct":
        return "struct<" + ",".join(f"{f['name']}:{type_text(f['type'])}" for f in dtype["fields"]) + ">"
    raise ValueError(f"unsupported Delta type {dtype!r}")


def type_name(dtype: str | Mapping[str, Any]) -> str:
    """Unity Catalog's ColumnTypeName of a Delta/Spark JSON type."""
    if isinstance(dtype, str):
        return "DECIMAL" if dtype.startswith("decimal(") else _TYPE_NAME[dtype]
    return _TYPE_NAME[dtype["type"]]


def storage_location(table_uri: str) -> str:
    """The URI Unity Catalog stores: remote URIs as they are, local paths as file:// URLs."""
    if "://" in table_uri:
        return table_uri.rstrip("/")
    return "file://" + os.path.abspath(table_uri)


def table_request(
    target: UCTarget,
    name: str,
    table_uri: str,
    storage_options: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The CreateTable body for the Delta table at `table_uri`, named `name` in the target's catalog.schema."""
    delta = DeltaTable(table_uri, storage_options=dict(storage_options or {}) or None)
    schema_json = json.loads(delta.schema().to_json())
    body: dict[str, Any] = {
        "name": name,
        "catalog_name": target.catalog,
        "schema_name": target.schema,
        "table_type": "EXTERNAL",
        "data_source_format": "DELTA",
        "storage_location": storage_location(table_uri),
        "columns": column_infos(schema_json, list(delta.metadata().partition_columns), column_comments(name)),
        "properties": {**DEFAULT_PROPERTIES, **dict(properties or {})},
    }
    comment = table_comment(name)
    if comment:
        body["comment"] = comment
    return body


_COLUMN_KEYS = ("name", "type_text", "type_name", "position", "nullable", "comment", "partition_index")


def _normalised(table: Mapping[str, Any], properties: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a TableInfo that registration owns; server-added properties are ignored."""
    have = table.get("properties") or {}
    return {
        "table_type": table.get("table_type"),
        "data_source_format": table.get("data_source_format"),
        "storage_location": (table.get("storage_location") or "").rstrip("/"),
        "comment": table.get("comment"),
        "properties": {k: have.get(k) for k in properties},
        "columns": [
            {k: c.get(k) for k in _COLUMN_KEYS}
            | {"nullable": c.get("nullable", True)}
            | {"type": json.loads(c["type_json"])["type"] if c.get("type_json") else None}
            for c in sorted(table.get("columns") or [], key=lambda c: c.get("position", 0))
        ],
    }


class UnityCatalog:
    """A small Unity Catalog REST client: catalogs, schemas and external Delta tables."""

    def __init__(
        self, target: UCTarget, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ):
        self.target = target
        base = target.url.rstrip("/")
        if not base.endswith(API_PATH):
            base += API_PATH
        headers = {"Accept": "application/json"}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        self._http = httpx.Client(
            base_url=base, headers=headers, timeout=timeout, verify=target.verify_tls, transport=transport
        )

    def __repr__(self) -> str:
        return f"UnityCatalog({self._http.base_url!s}, {self.target.catalog}.{self.target.schema})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UnityCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, json_body: Any = None, params: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json_body, params=params)
        except httpx.HTTPError as exc:
            raise UnityCatalogError(f"Unity Catalog {method} {path}: {type(exc).__name__}: {exc}") from None
        return response

    def _ok(self, response: httpx.Response, what: str) -> Any:
        if response.is_success:
            return response.json() if response.content else {}
        try:
            err = response.json()
        except ValueError:
            err = {"message": response.text[:200]}
        raise UnityCatalogError(
            f"Unity Catalog {what} failed: HTTP {response.status_code} "
            f"{err.get('error_code', '')}: {err.get('message', '')}".rstrip()
        )

    def _get_or_none(self, path: str, what: str) -> dict[str, Any] | None:
        response = self._call("GET", path)
        if response.status_code == 404:
            return None
        return self._ok(response, what)

    def get_table(self, full_name: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/tables/{quote(full_name, safe='')}", f"get table {full_name}")

    def ensure_catalog(self, comment: str | None = None) -> Action:
        name = self.target.catalog
        if self._get_or_none(f"/catalogs/{quote(name, safe='')}", f"get catalog {name}") is not None:
            return "unchanged"
        body = {"name": name, **({"comment": comment} if comment else {})}
        self._ok(self._call("POST", "/catalogs", json_body=body), f"create catalog {name}")
        return "created"

    def ensure_schema(self, comment: str | None = None) -> Action:
        full = f"{self.target.catalog}.{self.target.schema}"
        if self._get_or_none(f"/schemas/{quote(full, safe='')}", f"get schema {full}") is not None:
            return "unchanged"
        body = {"name": self.target.schema, "catalog_name": self.target.catalog}
        if comment:
            body["comment"] = comment
        self._ok(self._call("POST", "/schemas", json_body=body), f"create schema {full}")
        return "created"

    def register(self, request: Mapping[str, Any]) -> RegisterResult:
        """Create the external table, or leave it if it matches, or replace its registration if it differs."""
        full = f"{request['catalog_name']}.{request['schema_name']}.{request['name']}"
        ours = request.get("properties") or {}
        existing = self.get_table(full)
        action: Action = "created"
        if existing is not None:
            if _normalised(existing, ours) == _normalised(request, ours):
                action = "unchanged"
            else:
                path = f"/tables/{quote(full, safe='')}"
                self._ok(self._call("DELETE", path), f"drop outdated registration of {full}")
                action = "replaced"
        if action != "unchanged":
            self._ok(self._call("POST", "/tables", json_body=dict(request)), f"create table {full}")
        return RegisterResult(full, action, request["storage_location"], len(request["columns"]))


def register_lake_tables(
    target: UCTarget,
    tables: Mapping[str, str],
    *,
    storage_options: Mapping[str, str] | None = None,
    create_parents: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> list[RegisterResult]:
    """Register {table name: Delta table URI} under target.catalog.target.schema; returns one result per table."""
    with UnityCatalog(target, transport=transport) as uc:
        if create_parents:
            uc.ensure_catalog("PI System data landed by osipi-dagster")
            uc.ensure_schema("PI System data landed by osipi-dagster")
        return [uc.register(table_request(target, n, uri, storage_options)) for n, uri in tables.items()]
