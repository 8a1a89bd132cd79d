"""Dagster definitions for osipi-dagster, discovered by `dg.load_from_defs_folder`.

One folder per domain: `pi/` (PI System ingestion), `streaming/` (channel spool landing), `quality/` (checks, late-data
repair, alerts) and `lake/` (Delta table maintenance).
"""
