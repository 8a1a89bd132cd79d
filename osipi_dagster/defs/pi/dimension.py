"""The skeleton every dimension asset shares: snapshot from PI, SCD2 merge into its table, check, describe.

`dimension_asset` builds one; catalogue.py declares the three (points, AF elements, AF attributes).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.pi.reporting import failures, figures, table_metadata, write_result_metadata
from osipi_dagster.defs.pi.resources import PIWebAPIResource
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site
from osipi_dagster.defs.pi.specs import DAILY_FRESHNESS
from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.landing.catalogue import Snapshot
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.settings import Settings

# (client, validated settings, lake) -> the snapshot to merge.
Read = Callable[[PIWebAPIClient, Settings, Lake], Snapshot]
# (check spec, snapshot frame) -> its result, evaluated on the frame already in memory.
Check = Callable[[dg.AssetCheckSpec, pl.DataFrame], dg.AssetCheckResult]


def merge_snapshot(
    context: dg.AssetExecutionContext, lake: Lake, table: str, frame: pl.DataFrame, as_of: datetime
) -> tuple[pl.DataFrame, dict[str, object]]:
    """SCD2-merge a dimension snapshot; the frame merged and the writer's figures."""
    ref = lake.table(table)
    # A duplicated key fails the check; landing one copy keeps the table usable meanwhile.
    frame = frame.unique("web_id", keep="first", maintain_order=True)
    # Every non-key column is compared: a renamed tag or a moved element opens a new version.
    result = ref.scd2_merge(frame, key=["web_id"], as_of=as_of)
    context.log.info(f"{table}: merged a snapshot of {frame.height:,} rows into {ref.uri} ({result})")
    return frame, write_result_metadata(result)


def dimension_asset(
    table: str,
    *,
    read: Read,
    check: dg.AssetCheckSpec,
    evaluate: Check,
    description: str,
    deps: Sequence[dg.AssetKey] = (),
    site: Site = DEFAULT_SITE,
) -> dg.AssetsDefinition:
    """An unpartitioned, daily-refreshed PI asset named like its table, holding the SCD2 history of `read`."""

    @dg.asset(
        name=table,
        **site.asset_kwargs(),
        deps=[site.key(d) for d in deps],
        freshness_policy=DAILY_FRESHNESS,
        check_specs=[site.check(check)],
        description=description,
    )
    def _dimension(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        pi: PIWebAPIResource
        lake: LakeResource
        pi, lake = site.resources(context)
        settings = pi.settings()
        the_lake = lake.get_lake()
        as_of = datetime.now(UTC)
        with failures():
            snap, calls = pi.read(lambda client: read(client, settings, the_lake))
        # The check sees the snapshot as read, duplicates included.
        checked = evaluate(check, snap.frame)
        merged, written = merge_snapshot(context, the_lake, table, snap.frame, as_of)
        return dg.MaterializeResult(
            metadata=table_metadata(
                ref=the_lake.table(table),
                row_count=merged.height,
                preview=merged,
                http_calls=calls,
                as_of=dg.MetadataValue.timestamp(as_of),
                **written,
                **figures(snap.figures),
            ),
            check_results=[checked],
        )

    return _dimension
