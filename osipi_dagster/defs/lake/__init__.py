"""Dagster wiring for the Delta lake itself: the lake resource and table maintenance.

Each module exposes its Dagster objects at module level (or one `@dg.definitions` function) for the defs loader.
"""
