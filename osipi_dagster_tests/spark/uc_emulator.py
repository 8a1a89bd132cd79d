"""A Unity Catalog REST emulator for the tests: catalogs, schemas and external tables of `/api/2.1/unity-catalog`.

Why an emulator: the open-source server (io.unitycatalog:unitycatalog-server) and its Spark connector are not
served by the Maven registry the development and CI machines reach (see docs/databricks.md, "What was tested").
This follows the server's OpenAPI spec (api/all.yaml, 0.6) for the calls osipi-dagster makes and that polars'
`Catalog` makes to read a table back: the same paths, request validation (required fields, enum values, EXTERNAL
tables with a storage_location), the `{error_code, message}` error shape with 404/409/400, epoch-millisecond
timestamps and generated ids. `/_emulator/writes` counts mutating calls so tests can prove a no-op.

Run: [UC_EMULATOR_TOKEN=secret] python -m osipi_dagster_tests.spark.uc_emulator --port 8080
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API = "/api/2.1/unity-catalog"
TABLE_TYPES = {"MANAGED", "EXTERNAL", "STREAMING_TABLE", "MATERIALIZED_VIEW", "METRIC_VIEW", "VIEW"}
FORMATS = {"DELTA", "CSV", "JSON", "AVRO", "PARQUET", "ORC", "TEXT"}
TYPE_NAMES = {
    "BOOLEAN", "BYTE", "SHORT", "INT", "LONG", "FLOAT", "DOUBLE", "DATE", "TIMESTAMP", "TIMESTAMP_NTZ", "STRING",
    "BINARY", "DECIMAL", "INTERVAL", "ARRAY", "STRUCT", "MAP", "VARIANT", "CHAR", "NULL", "USER_DEFINED_TYPE",
    "TABLE_TYPE",
}  # fmt: skip


class UCError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> int:
    return int(time.time() * 1000)


class State:
    def __init__(self) -> None:
        self.catalogs: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.writes = 0


def _body(payload: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise UCError(400, "INVALID_ARGUMENT", "request body must be a JSON object")
    missing = [k for k in required if not payload.get(k)]
    if missing:
        raise UCError(400, "INVALID_ARGUMENT", f"missing required field(s): {', '.join(missing)}")
    return payload


def _check_columns(columns: Any) -> None:
    if not isinstance(columns, list):
        raise UCError(400, "INVALID_ARGUMENT", "columns must be an array of ColumnInfo")
    for col in columns:
        if not isinstance(col, dict) or not col.get("name"):
            raise UCError(400, "INVALID_ARGUMENT", "every column needs a name")
        if col.get("type_name") not in TYPE_NAMES:
            raise UCError(
                400, "INVALID_ARGUMENT", f"column {col['name']}: unknown type_name {col.get('type_name')!r}"
            )


def build_app(token: str | None = None) -> Starlette:
    state = State()

    async def payload(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise UCError(400, "INVALID_ARGUMENT", "request body is not JSON") from None

    def list_catalogs(request: Request) -> JSONResponse:
        return JSONResponse({"catalogs": list(state.catalogs.values())})

    async def create_catalog(request: Request) -> JSONResponse:
        body = _body(await payload(request), ("name",))
        if body["name"] in state.catalogs:
            raise UCError(409, "ALREADY_EXISTS", f"Catalog already exists: {body['name']}")
        info = {
            "name": body["name"], "comment": body.get("comment"), "properties": body.get("properties") or {},
            "id": str(uuid.uuid4()), "created_at": _now(), "owner": "osipi-tests",
        }  # fmt: skip
        state.catalogs[body["name"]] = info
        state.writes += 1
        return JSONResponse(info)

    def get_catalog(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in state.catalogs:
            raise UCError(404, "NOT_FOUND", f"Catalog not found: {name}")
        return JSONResponse(state.catalogs[name])

    def list_schemas(request: Request) -> JSONResponse:
        catalog = request.query_params.get("catalog_name")
        if not catalog:
            raise UCError(400, "INVALID_ARGUMENT", "catalog_name is required")
        if catalog not in state.catalogs:
            raise UCError(404, "NOT_FOUND", f"Catalog not found: {catalog}")
        return JSONResponse({"schemas": [s for s in state.schemas.values() if s["catalog_name"] == catalog]})

    async def create_schema(request: Request) -> JSONResponse:
        body = _body(await payload(request), ("name", "catalog_name"))
        if body["catalog_name"] not in state.catalogs:
            raise UCError(404, "NOT_FOUND", f"Catalog not found: {body['catalog_name']}")
        full = f"{body['catalog_name']}.{body['name']}"
        if full in state.schemas:
            raise UCError(409, "ALREADY_EXISTS", f"Schema already exists: {full}")
        info = {
            "name": body["name"], "catalog_name": body["catalog_name"], "full_name": full,
            "comment": body.get("comment"), "properties": body.get("properties") or {},
            "schema_id": str(uuid.uuid4()), "created_at": _now(), "owner": "osipi-tests",
        }  # fmt: skip
        state.schemas[full] = info
        state.writes += 1
        return JSONResponse(info)

    def get_schema(request: Request) -> JSONResponse:
        full = request.path_params["full_name"]
        if full not in state.schemas:
            raise UCError(404, "NOT_FOUND", f"Schema not found: {full}")
        return JSONResponse(state.schemas[full])

    def list_tables(request: Request) -> JSONResponse:
        catalog, schema = request.query_params.get("catalog_name"), request.query_params.get("schema_name")
        if not catalog or not schema:
            raise UCError(400, "INVALID_ARGUMENT", "catalog_name and schema_name are required")
        if f"{catalog}.{schema}" not in state.schemas:
            raise UCError(404, "NOT_FOUND", f"Schema not found: {catalog}.{schema}")
        found = [
            t for t in state.tables.values() if (t["catalog_name"], t["schema_name"]) == (catalog, schema)
        ]
        return JSONResponse({"tables": found})

    async def create_table(request: Request) -> JSONResponse:
        body = _body(await payload(request), ("name", "catalog_name", "schema_name", "table_type"))
        if "columns" not in body:
            raise UCError(400, "INVALID_ARGUMENT", "missing required field(s): columns")
        if body["table_type"] not in TABLE_TYPES:
            raise UCError(400, "INVALID_ARGUMENT", f"unknown table_type {body['table_type']!r}")
        if body["table_type"] != "EXTERNAL":
            raise UCError(400, "INVALID_ARGUMENT", "Only external table creation is supported.")
        if not body.get("storage_location"):
            raise UCError(400, "INVALID_ARGUMENT", "Storage location is required for external tables.")
        if body.get("data_source_format") not in FORMATS:
            raise UCError(
                400, "INVALID_ARGUMENT", f"unknown data_source_format {body.get('data_source_format')!r}"
            )
        _check_columns(body["columns"])
        schema_full = f"{body['catalog_name']}.{body['schema_name']}"
        if schema_full not in state.schemas:
            raise UCError(404, "NOT_FOUND", f"Schema not found: {schema_full}")
        full = f"{schema_full}.{body['name']}"
        if full in state.tables:
            raise UCError(409, "ALREADY_EXISTS", f"Table already exists: {full}")
        now = _now()
        info = {
            key: body.get(key)
            for key in ("name", "catalog_name", "schema_name", "table_type", "data_source_format", "columns",
                        "storage_location", "comment")
        }  # fmt: skip
        info |= {"properties": body.get("properties") or {}, "table_id": str(uuid.uuid4())}
        info |= {"created_at": now, "updated_at": now, "owner": "osipi-tests", "created_by": "osipi-tests"}
        state.tables[full] = info
        state.writes += 1
        return JSONResponse(info)

    def get_table(request: Request) -> JSONResponse:
        full = request.path_params["full_name"]
        if full not in state.tables:
            raise UCError(404, "NOT_FOUND", f"Table not found: {full}")
        return JSONResponse(state.tables[full])

    def delete_table(request: Request) -> JSONResponse:
        full = request.path_params["full_name"]
        if state.tables.pop(full, None) is None:
            raise UCError(404, "NOT_FOUND", f"Table not found: {full}")
        state.writes += 1
        return JSONResponse({})

    def writes(request: Request) -> JSONResponse:
        return JSONResponse({"writes": state.writes})

    def handle(exc_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UCError)
        return JSONResponse(
            {"error_code": exc.code, "message": exc.message, "details": []}, status_code=exc.status
        )

    routes = [
        Route(f"{API}/catalogs", list_catalogs, methods=["GET"]),
        Route(f"{API}/catalogs", create_catalog, methods=["POST"]),
        Route(f"{API}/catalogs/{{name}}", get_catalog, methods=["GET"]),
        Route(f"{API}/schemas", list_schemas, methods=["GET"]),
        Route(f"{API}/schemas", create_schema, methods=["POST"]),
        Route(f"{API}/schemas/{{full_name}}", get_schema, methods=["GET"]),
        Route(f"{API}/tables", list_tables, methods=["GET"]),
        Route(f"{API}/tables", create_table, methods=["POST"]),
        Route(f"{API}/tables/{{full_name}}", get_table, methods=["GET"]),
        Route(f"{API}/tables/{{full_name}}", delete_table, methods=["DELETE"]),
        Route("/_emulator/writes", writes, methods=["GET"]),
    ]
    middleware = [Middleware(BaseHTTPMiddleware, dispatch=_token_check(token))] if token else []
    return Starlette(routes=routes, exception_handlers={UCError: handle}, middleware=middleware)


def _token_check(token: str) -> Any:
    async def dispatch(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith(API) and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error_code": "UNAUTHENTICATED", "message": "bad or missing token"}, 401)
        return await call_next(request)

    return dispatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(os.environ.get("UC_EMULATOR_TOKEN")), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
