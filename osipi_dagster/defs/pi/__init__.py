"""Dagster wiring for PI System data: resources, partitions, assets, checks, jobs, schedules.

Each module exposes its Dagster objects at module level (or one `@dg.definitions` function) for the defs loader.
"""
