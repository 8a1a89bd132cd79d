"""Development tools for tests, the demo and benchmarks: a throwaway PostgreSQL (postgres.py, no Dagster) and an
asset-backfill submitter (backfill.py)."""
