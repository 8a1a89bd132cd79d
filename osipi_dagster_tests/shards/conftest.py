"""Fixtures for the tag-shard tests: the Dagster layer's emulator model, catalogue lake and resources."""

from osipi_dagster_tests.defs.conftest import catalogue_lake, lake, model, resources

__all__ = ["catalogue_lake", "lake", "model", "resources"]
