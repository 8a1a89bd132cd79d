"""Dagster-free building blocks: the PI Web API client and the Delta Lake writer."""
