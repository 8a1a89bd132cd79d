"""Summaries: PI's summary calculations per stream (SUMMARY_SCHEMA) and recorded counts (COUNTS_SCHEMA) for
completeness checks, asked with the half-open event-weighted basis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import timedelta

import polars as pl

from osipi_dagster.lib.piwebapi.base import ClientBase
from osipi_dagster.lib.piwebapi.decode import decode_summary
from osipi_dagster.lib.piwebapi.pitime import TimeLike, format_span, parse_interval, to_pi
from osipi_dagster.lib.piwebapi.schema import COUNTS_SCHEMA, SUMMARY_SCHEMA

# The event-weighted calculation basis whose every interval is half-open, [earlier, later), whatever the interval
# layout: compare its summaries with a half-open read. Plain EventWeighted is not: with one interval PI counts the
# events at *both* boundaries (AVEVA, topics/calculation-basis.html), so a value stamped exactly at the window end
# would be counted by PI and not by `recorded(start, end)`.
HALF_OPEN_BASIS = "EventWeightedExcludeMostRecentEvent"

# PI Web API's SummaryType and CalculationBasis values, canonically spelt (PI matches them case-insensitively).
SUMMARY_TYPES = (
    "Total",
    "Average",
    "Minimum",
    "Maximum",
    "Range",
    "StdDev",
    "PopulationStdDev",
    "Count",
    "PercentGood",
    "TotalWithUOM",
    "All",
    "AllForNonNumeric",
)
CALCULATION_BASES = (
    "TimeWeighted",
    "EventWeighted",
    "TimeWeightedContinuous",
    "TimeWeightedDiscrete",
    "EventWeightedExcludeMostRecentEvent",
    "EventWeightedExcludeEarliestEvent",
    "EventWeightedIncludeBothEnds",
)


class SummariesMixin(ClientBase):
    """PI-side aggregates: summaries over a range or per duration, and counts of recorded values."""

    def summary(
        self,
        web_ids: Iterable[str],
        start: TimeLike,
        end: TimeLike,
        summary_types: Sequence[str] = ("Average",),
        summary_duration: str | timedelta | None = None,
        *,
        calculation_basis: str = "TimeWeighted",
    ) -> pl.DataFrame:
        """Summaries (SUMMARY_SCHEMA) per stream and type, over the whole range or per `summary_duration`.

        `calculation_basis` decides which boundary events an event-weighted interval holds: plain EventWeighted
        holds both ends of a single interval and the start of each of several; HALF_OPEN_BASIS holds [start, end)
        of every interval, which is what a comparison with a half-open `recorded` read needs.
        """
        t0, t1 = self._times(start, end)
        params = [("startTime", to_pi(t0)), ("endTime", to_pi(t1)), ("calculationBasis", calculation_basis)]
        params += [("summaryType", t) for t in summary_types]
        intervals = 1
        if summary_duration is not None:
            span = parse_interval(summary_duration)
            params.append(("summaryDuration", format_span(span)))
            intervals = max(1, math.ceil((t1 - t0) / span))
        out = self._streamset_frames(
            "summary", list(web_ids), params, intervals * len(summary_types), decode_summary
        )
        return out if len(out) else pl.DataFrame(schema=SUMMARY_SCHEMA)

    def recorded_counts(self, web_ids: Iterable[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """PI's summary Count per stream over [start, end), COUNTS_SCHEMA, batched by stream set.

        Asked with HALF_OPEN_BASIS (EventWeightedExcludeMostRecentEvent): one EventWeighted interval would also
        count a value stamped exactly at `end`, which a half-open read leaves to the next window. PI counts *good*
        values only: compare with the rows of a half-open `recorded` read whose `good` is true and `is_system`
        false. Streams the server reports no count for get 0; every requested web id has a row.
        """
        ids = list(dict.fromkeys(web_ids))
        s = self.summary(ids, start, end, ("Count",), calculation_basis=HALF_OPEN_BASIS)
        counts = (
            s.filter(pl.col("summary_type") == "Count")
            .group_by("web_id")
            .agg(pl.col("value").sum().round(0).cast(pl.Int64).alias("count"))
        )
        base = pl.DataFrame({"web_id": ids}, schema={"web_id": pl.Utf8})
        return (
            base.join(counts, on="web_id", how="left")
            .with_columns(pl.col("count").fill_null(0))
            .select(list(COUNTS_SCHEMA))
        )
