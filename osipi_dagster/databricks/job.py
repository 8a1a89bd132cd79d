"""Databricks job entry point without Dagster: land one window of PI recorded values in a Unity Catalog table.

    python job.py --table main.pi.pi_timeseries [--start 2024-05-01T09:00Z --end 2024-05-01T10:00Z]
                  [--tag-filter 'U1*'] [--secret-scope osipi]

Without --start/--end it lands the last whole UTC hour, so an hourly schedule a few minutes past the hour keeps
the table current and a rerun of any hour replaces it. PI settings come from the environment contract
(PI_WEB_API_URL, ...); with --secret-scope, those not set are read from that Databricks secret scope under their
lower-case names (pi_password, ...). Exits non-zero when a key repeats or the commit did not hold every row read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta

from osipi_dagster.databricks.extract import Extracted, extract_window, read_options


def last_whole_hour(now: datetime) -> tuple[datetime, datetime]:
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: write it like 2024-05-01T09:00Z")
    return moment


def secrets_from_scope(scope: str) -> dict[str, str]:
    """PI settings missing from the environment, from a Databricks secret scope (only on Databricks)."""
    from pyspark.sql import SparkSession

    from osipi_dagster.spark.options import CONNECTION_OPTIONS

    try:
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit(
            f"--secret-scope {scope}: Databricks secret scopes exist only on Databricks"
        ) from None
    dbutils = DBUtils(SparkSession.builder.getOrCreate())
    names = {s.key for s in dbutils.secrets.list(scope)}
    wanted = [v for v in CONNECTION_OPTIONS.values() if not os.environ.get(v) and v.lower() in names]
    return {v: dbutils.secrets.get(scope, v.lower()) for v in wanted}


def main(argv: list[str] | None = None) -> Extracted:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description="Land one window of PI recorded values in a Delta table")
    parser.add_argument("--table", required=True, help="catalog.schema.table (or schema.table)")
    parser.add_argument("--start", type=_moment, help="window start, ISO 8601 with a zone")
    parser.add_argument("--end", type=_moment, help="window end, exclusive")
    parser.add_argument("--tag-filter", dest="tag_filter")
    parser.add_argument("--data-servers", dest="data_servers")
    parser.add_argument("--secret-scope", dest="secret_scope")
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("give both --start and --end, or neither (the last whole UTC hour)")
    start, end = (args.start, args.end) if args.start else last_whole_hour(datetime.now(UTC))
    environ = {**os.environ, **(secrets_from_scope(args.secret_scope) if args.secret_scope else {})}
    got = extract_window(
        SparkSession.builder.getOrCreate(), args.table, start, end, read_options(vars(args), environ)
    )
    summary = {
        "table": args.table,
        "window": [start.isoformat(), end.isoformat()],
        "rows": got.rows,
        "tags": got.tags,
        "duplicate_keys": got.duplicate_keys,
        "rows_written": got.write.rows,
        "delta_version": got.write.version,
    }
    print(json.dumps(summary))
    if got.duplicate_keys or got.write.rows != got.rows:
        raise SystemExit(f"check failed: {summary}")
    return got


if __name__ == "__main__":
    main(sys.argv[1:])
