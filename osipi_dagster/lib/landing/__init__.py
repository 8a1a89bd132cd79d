"""PI data landed in the lake (no Dagster): table names and landed schemas, catalogue and event-frame snapshots,
recorded values streamed into a window, read-backs, repair diffs and the late-data audit.

The Dagster layer (osipi_dagster/defs/pi, defs/quality) wires these into assets and sensors and reports their figures.
"""

from osipi_dagster.lib.landing.selection import LandingError, pi_name_filter_regex, tags_to_extract

__all__ = ["LandingError", "pi_name_filter_regex", "tags_to_extract"]
