"""The event-frame assets: frames of the configured AF databases by the UTC day they start, and their captured
attribute values, each day replaced in one Delta commit.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.names import EVENT_FRAMES_KEY
from osipi_dagster.defs.pi.partitions import window
from osipi_dagster.defs.pi.reporting import (
    failures,
    table_metadata,
    time_range,
    total_rows,
    write_result_metadata,
)
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site
from osipi_dagster.defs.pi.specs import DAILY_FRESHNESS
from osipi_dagster.lib.lake import DeltaTableRef
from osipi_dagster.lib.landing.event_frames import (
    frames_in_lake,
    read_event_frame_attributes,
    read_event_frames,
)
from osipi_dagster.lib.landing.tables import EF_ATTRIBUTES_TABLE, EVENT_FRAMES_TABLE


def event_frame_assets(site: Site = DEFAULT_SITE) -> list[dg.AssetsDefinition]:
    """The site's event frames and their attributes."""

    @dg.asset(
        **site.daily_kwargs(),
        freshness_policy=DAILY_FRESHNESS,
        description="Event frames of the configured AF databases that start in the partition's UTC day; "
        "in-progress frames have end null and in_progress true until a later run closes them.",
    )
    def event_frames(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        pi: PIWebAPIResource
        lake: LakeResource
        pi, lake = site.resources(context)
        start, end = window(context)
        settings = pi.settings()
        ingested_at = datetime.now(UTC)
        with failures():
            (frame, databases), calls = pi.read(
                lambda client: read_event_frames(client, settings.af_databases, start, end, ingested_at)
            )
        in_progress = int(frame["in_progress"].sum())
        result = land_day(
            lake.get_lake().table(EVENT_FRAMES_TABLE),
            frame,
            "start",
            start,
            end,
            calls,
            event_frames=frame.height,
            in_progress=in_progress,
            databases=databases,
            **time_range(frame["start"].min(), frame["start"].max()),  # type: ignore[arg-type]
        )
        context.log.info(
            f"event_frames {start:%Y-%m-%d}..{end:%Y-%m-%d}: {frame.height} frames, {in_progress} in progress"
        )
        return result

    @dg.asset(
        **site.daily_kwargs(),
        deps=[site.key(EVENT_FRAMES_KEY)],
        freshness_policy=DAILY_FRESHNESS,
        description="Attributes of the partition's event frames with their captured values.",
    )
    def event_frame_attributes(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        pi: PIWebAPIResource
        lake: LakeResource
        pi, lake = site.resources(context)
        start, end = window(context)
        the_lake = lake.get_lake()
        with failures():
            frames = frames_in_lake(the_lake, start, end)
        ingested_at = datetime.now(UTC)
        frame, calls = pi.read(lambda client: read_event_frame_attributes(client, frames, ingested_at))
        return land_day(
            the_lake.table(EF_ATTRIBUTES_TABLE),
            frame,
            "event_frame_start",
            start,
            end,
            calls,
            event_frames=frames.height,
            attributes=frame.height,
        )

    return [event_frames, event_frame_attributes]


event_frames, event_frame_attributes = event_frame_assets()


def land_day(
    ref: DeltaTableRef,
    frame: pl.DataFrame,
    column: str,
    start: datetime,
    end: datetime,
    calls: int,
    **figures: object,
) -> dg.MaterializeResult:
    """Replace the day [start, end) of `ref` (by `column`) with `frame` in one Delta commit, and describe it."""
    result = ref.replace_window([frame], column=column, start=start, end=end, partition_by=["date"])
    return dg.MaterializeResult(
        metadata=table_metadata(
            ref=ref,
            row_count=total_rows(ref, frame.height),
            preview=frame,
            **{"dagster/partition_row_count": dg.MetadataValue.int(frame.height)},
            http_calls=calls,
            **figures,
            **write_result_metadata(result),
        )
    )
