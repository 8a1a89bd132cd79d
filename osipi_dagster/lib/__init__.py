"""Reusable, Dagster-free machinery: the PI Web API client and the Delta Lake writer.

Nothing under this package imports dagster; the Dagster layer in osipi_dagster/defs wires these into assets.
"""
