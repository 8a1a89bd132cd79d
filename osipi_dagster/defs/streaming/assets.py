"""The stream asset: every landing of streamed values into `pi_timeseries` is a materialization of it.

The lander's landings are reported by `pi_stream_report_sensor` (reporting.py), without a run; run, the asset lands
exactly the spool segments named in its run config (the run-per-batch sensor, manual replays). Streamed rows carry
`source = "stream"`; the hourly recorded partition later replaces them with the archive.
"""

import time

import dagster as dg

from osipi_dagster.defs.lake.resources import LakeResource
from osipi_dagster.defs.streaming.names import STREAM_KEY, SiteLike, StreamNames
from osipi_dagster.defs.streaming.resources import SpoolResource
from osipi_dagster.lib.landing.tables import TIMESERIES_TABLE
from osipi_dagster.lib.streaming import STREAMED_SCHEMA, land_segments

__all__ = ["STREAM_KEY", "StreamBatchConfig", "pi_timeseries_stream", "stream_asset"]

# Listener counters surfaced with every batch (cumulative since the listener process started).
LISTENER_FIGURES = ("reconnects", "heartbeats", "gap_reads", "gap_values", "connects", "channels", "streams")


class StreamBatchConfig(dg.Config):
    """Which sealed spool segments this run lands (set by the sensor; each run lands exactly these)."""

    segments: list[str]


def _seconds(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(value) if value is not None else dg.MetadataValue.null()


def stream_asset(site: SiteLike | None = None) -> dg.AssetsDefinition:
    """The connection's stream asset (`<prefix>/pi_timeseries_stream`; the environment's: `pi/pi_timeseries_stream`)."""
    names = StreamNames.of(site)

    @dg.asset(
        key=names.key,
        group_name=names.group,
        kinds={"deltalake", "polars"},
        description="Streamed PI values (channels → spool → lander) inserted into the pi_timeseries Delta table "
        "with source='stream', insert-if-absent on (web_id, timestamp, ordinal), one materialization per landing "
        f"(reported by {names.named('pi_stream_report_sensor')}, no run); replaced by the recorded pi_timeseries "
        "when the recorded hour is materialized.",
        metadata={"dagster/table_name": TIMESERIES_TABLE},
        required_resource_keys={names.lake_key, names.spool_key},
    )
    def _stream(context: dg.AssetExecutionContext, config: StreamBatchConfig) -> dg.MaterializeResult:
        lake = getattr(context.resources, names.lake_key)
        spool = getattr(context.resources, names.spool_key)
        return land_batch(context, config, lake, spool)

    return _stream


def land_batch(
    context: dg.AssetExecutionContext, config: StreamBatchConfig, lake: LakeResource, spool: SpoolResource
) -> dg.MaterializeResult:
    """Land exactly the run config's segments and describe the landing."""
    reader = spool.reader()
    the_lake = lake.get_lake()
    report = land_segments(the_lake, reader, config.segments)
    if report.segments_missing:
        context.log.warning(
            f"{len(report.segments_missing)} segments were already pruned from {reader.root} (landed earlier): "
            f"{', '.join(report.segments_missing)}"
        )
    pruned = reader.prune_landed(spool.keep_landed_hours * 3600)
    listener = reader.listener_state()
    context.log.info(
        f"landed {len(config.segments)} segments: {report.inserted:,} values inserted, "
        f"latency p50 {report.latency_p50_s}s p95 {report.latency_p95_s}s"
    )
    ref = the_lake.table(TIMESERIES_TABLE)
    metadata: dict[str, object] = {
        "table_uri": dg.MetadataValue.path(ref.uri),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, str(dtype)) for name, dtype in STREAMED_SCHEMA.items()]
        ),
        "segments": dg.MetadataValue.json(report.segments),
        "values": report.rows_read,
        "values_inserted": report.inserted,
        "already_present": report.already_present,
        "duplicates_in_batch": report.duplicates_in_batch,
        "superseded_by_archive": report.superseded_by_archive,
        "gap_values_in_batch": report.gap_rows,
        "latency_p50_s": _seconds(report.latency_p50_s),
        "latency_p95_s": _seconds(report.latency_p95_s),
        "spool_to_lake_p50_s": _seconds(report.spool_to_lake_p50_s),
        "spool_to_lake_p95_s": _seconds(report.spool_to_lake_p95_s),
        "delta_version": report.delta_version if report.delta_version is not None else "unchanged",
        "duration_s": report.duration_s,
        "merge_attempts": report.merge_attempts,
        # CPU of the whole run process so far (Python start-up, Dagster, imports, the landing): the real price of
        # a micro-batch, which the landing's own duration_s hides.
        "run_process_cpu_s": round(time.process_time(), 2),
        "segments_pruned": pruned,
        **{f"listener_{k}": int(listener[k]) for k in LISTENER_FIGURES if k in listener},
    }
    if report.first_timestamp is not None and report.last_timestamp is not None:
        metadata["first_timestamp"] = dg.MetadataValue.timestamp(report.first_timestamp)
        metadata["last_timestamp"] = dg.MetadataValue.timestamp(report.last_timestamp)
    if listener.get("last_error"):
        metadata["listener_last_error"] = str(listener["last_error"])
    metadata["dagster/row_count"] = dg.MetadataValue.int(report.inserted)
    return dg.MaterializeResult(metadata=metadata)


pi_timeseries_stream = stream_asset()
