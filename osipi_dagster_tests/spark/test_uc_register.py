"""Unity Catalog registration of the lake's Delta tables (lib/lake/unity_catalog.py) over real HTTP.

Tables are written by the Dagster assets against mock_pi, registered in the UC REST emulator, then read back by a
client we did not write: polars' `Catalog` (its Rust UC client parses the TableInfo, its type_json parser gives the
schema, and scan_table reads the data at the registered storage_location).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from osipi_dagster.lib.lake.descriptions import column_comments, table_comment
from osipi_dagster.lib.lake.unity_catalog import UCTarget, UnityCatalogError, register_lake_tables
from osipi_dagster_tests.spark.conftest import UCServer

pytestmark = pytest.mark.filterwarnings("ignore::polars.exceptions.UnstableWarning")

TABLES = ("pi_points", "pi_timeseries")


def target(server: UCServer, **overrides: str) -> UCTarget:
    fields = {
        "url": server.url,
        "catalog": f"osipi_{uuid.uuid4().hex[:8]}",
        "schema": "pi",
        "token": server.token,
    }
    return UCTarget(**{**fields, **overrides})  # type: ignore[arg-type]


def catalog(server: UCServer) -> pl.Catalog:
    return pl.Catalog(server.url, bearer_token=server.token, require_https=False)


def test_register_then_read_back_through_uc(uc_server: UCServer, landed_lake: Path) -> None:
    where = target(uc_server)
    results = register_lake_tables(where, {t: str(landed_lake / t) for t in TABLES})
    assert [(r.full_name, r.action) for r in results] == [
        (f"{where.catalog}.pi.{t}", "created") for t in TABLES
    ]

    uc = catalog(uc_server)
    assert sorted(t.name for t in uc.list_tables(where.catalog, "pi")) == sorted(TABLES)
    info = uc.get_table_info(where.catalog, "pi", "pi_timeseries")
    assert info.table_type == "EXTERNAL"
    assert info.data_source_format == "DELTA"
    assert info.storage_location == (landed_lake / "pi_timeseries").as_uri()
    assert info.comment == table_comment("pi_timeseries")
    assert info.properties["source"] == "osipi"
    # Every column has its documented comment; the partition column is marked; types parse as the Delta table's.
    delta = pl.read_delta(str(landed_lake / "pi_timeseries"))
    assert [c.name for c in info.columns or []] == delta.columns
    assert {c.name: c.comment for c in info.columns or []} == column_comments("pi_timeseries")
    assert [c.name for c in info.columns or [] if c.partition_index is not None] == ["date"]
    # polars reads UC's `timestamp` (an instant, shown in the session time zone) as a naive Datetime.
    naive = {k: pl.Datetime("us") if isinstance(v, pl.Datetime) else v for k, v in delta.schema.items()}
    assert dict(info.get_polars_schema() or {}) == naive

    # The data, read through the catalog by polars, is the lake's.
    scanned = uc.scan_table(where.catalog, "pi", "pi_timeseries", credential_provider=None).collect()
    assert scanned.height > 1000
    key = ["web_id", "timestamp", "ordinal"]
    assert scanned.sort(key).equals(delta.sort(key))
    points = uc.get_table_info(where.catalog, "pi", "pi_points")
    assert {"valid_from", "is_current"} <= {c.name for c in points.columns or []}


def test_reregistering_changes_nothing(uc_server: UCServer, landed_lake: Path) -> None:
    where = target(uc_server)
    tables = {t: str(landed_lake / t) for t in TABLES}
    register_lake_tables(where, tables)
    before = catalog(uc_server).get_table_info(where.catalog, "pi", "pi_timeseries")
    writes = uc_server.writes()

    again = register_lake_tables(where, tables)

    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert uc_server.writes() == writes
    after = catalog(uc_server).get_table_info(where.catalog, "pi", "pi_timeseries")
    assert (after.table_id, after.updated_at) == (before.table_id, before.updated_at)


def test_a_new_column_replaces_the_registration_not_the_data(
    uc_server: UCServer, landed_lake: Path, tmp_path: Path
) -> None:
    table = tmp_path / "pi_points"
    shutil.copytree(landed_lake / "pi_points", table)
    where = target(uc_server)
    register_lake_tables(where, {"pi_points": str(table)})
    version = DeltaTable(str(table)).version()
    extra = pl.read_delta(str(table)).head(1).with_columns(pl.lit("x").alias("site"))
    write_deltalake(str(table), extra.to_arrow(), mode="append", schema_mode="merge")

    (result,) = register_lake_tables(where, {"pi_points": str(table)})

    assert result.action == "replaced"
    columns = catalog(uc_server).get_table_info(where.catalog, "pi", "pi_points").columns or []
    assert columns[-1].name == "site" and columns[-1].comment is None
    assert DeltaTable(str(table)).version() == version + 1  # registration wrote nothing to the table


def test_a_wrong_token_is_refused_and_never_echoed(uc_server: UCServer, landed_lake: Path) -> None:
    secret = "not-the-token-" + uuid.uuid4().hex
    where = target(uc_server, token=secret)
    with pytest.raises(UnityCatalogError, match="HTTP 401 UNAUTHENTICATED") as failure:
        register_lake_tables(where, {"pi_points": str(landed_lake / "pi_points")})
    assert secret not in str(failure.value)
    assert secret not in repr(where)


def test_settings_from_the_environment() -> None:
    assert UCTarget.from_env({}) is None  # opt-in
    with pytest.raises(ValueError, match=r"OSIPI_UC_URL .* or DATABRICKS_HOST"):
        UCTarget.from_env({"OSIPI_UC_CATALOG": "main"})
    databricks = UCTarget.from_env(
        {
            "OSIPI_UC_CATALOG": "main",
            "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net",
            "DATABRICKS_TOKEN": "t",
        }
    )
    assert databricks == UCTarget(
        url="https://adb-1.azuredatabricks.net", catalog="main", schema="pi", token="t"
    )
    oss = UCTarget.from_env(
        {
            "OSIPI_UC_CATALOG": "c",
            "OSIPI_UC_SCHEMA": "s",
            "OSIPI_UC_URL": "http://h:8080",
            "DATABRICKS_HOST": "x",
        }
    )
    assert oss is not None
    assert (oss.url, oss.schema, oss.token) == ("http://h:8080", "s", None)
