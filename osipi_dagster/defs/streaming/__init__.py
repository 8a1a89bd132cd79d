"""Dagster wiring for streamed PI values: the spool resource, the micro-batch asset and job, the landing sensor.

The channel listener itself runs outside Dagster (`python -m osipi_dagster.lib.streaming listen`).
"""
