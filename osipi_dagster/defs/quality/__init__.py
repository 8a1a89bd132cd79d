"""Dagster wiring for data quality: schema-drift and freshness checks, the late-data repair sensor, alerts.

Pure computations live in osipi_dagster/lib/quality; the PI assets compute their own quality checks in-run.
"""
