"""Dagster wiring for streamed PI values: the stream asset, the report sensor that turns every lander commit into a
materialization (reporting.py) with the checks on streamed data (checks.py), the spool resource, and the older
run-per-micro-batch job and sensor (sensors.py).

The listener and the lander run outside Dagster (`python -m osipi_dagster.lib.streaming listen|land`).
"""
