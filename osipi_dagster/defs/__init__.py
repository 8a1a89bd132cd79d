"""Dagster definitions for osipi-dagster, discovered by `dg.load_from_defs_folder`.

One folder per domain: `pi/` (PI System ingestion) and `lake/` (Delta table maintenance).
"""
