"""Dagster components of osipi-dagster: `PIConnection` (one PI Web API per `defs.yaml`)."""

from osipi_dagster.components.pi_connection import PIConnection

__all__ = ["PIConnection"]
