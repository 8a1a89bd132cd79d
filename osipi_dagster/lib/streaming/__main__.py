"""CLI of the streaming processes: `python -m osipi_dagster.lib.streaming listen|land --spool DIR ...`.

`listen` subscribes PI channels into the spool (with `--land`, it also lands in the same process); `land` commits
sealed segments to Delta. Connection and auth come from the environment contract (PI_WEB_API_URL, PI_AUTH_METHOD,
...), the lake from OSIPI_LAKE_URI; `osipi stream listen|land --connection NAME` passes a PIConnection's settings
instead (`main(argv, settings)`). SIGTERM/SIGINT stop cleanly (the open segment is sealed); SIGKILL loses nothing
either: the next start recovers the spool, and landing is idempotent. Both serve /livez, /readyz and /metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from types import FrameType

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.settings import LakeFields, Settings, SettingsError, env_settings
from osipi_dagster.lib.streaming.compaction import (
    DEFAULT_COMPACT_INTERVAL_S,
    DEFAULT_COMPACT_TARGET_BYTES,
    DEFAULT_LOG_RETENTION_HOURS,
)
from osipi_dagster.lib.streaming.health import (
    DEFAULT_LANDER_ADDRESS,
    DEFAULT_LISTENER_ADDRESS,
    HealthServer,
    StreamHealth,
)
from osipi_dagster.lib.streaming.lander import DEFAULT_MAX_BATCH_BYTES, Lander
from osipi_dagster.lib.streaming.listener import (
    DEFAULT_CATCH_UP_SLICE_S,
    DEFAULT_LATE_ALLOWANCE_S,
    TAGS_SCHEMA,
    ChannelListener,
    tags_matching,
)
from osipi_dagster.lib.streaming.spool import Spool, SpoolError, SpoolReader

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m osipi_dagster.lib.streaming")
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("listen", help="subscribe PI channels and spool every value durably")
    lp.add_argument(
        "--spool", required=True, help="spool directory (OSIPI_STREAM_SPOOL for the Dagster side)"
    )
    lp.add_argument("--pi-url", help="PI Web API base URL (default: PI_WEB_API_URL)")
    lp.add_argument("--web-id", action="append", default=[], help="subscribe this WebID (repeatable)")
    lp.add_argument(
        "--tag-filter", help="PI name filter over current pi_points rows (default: PI_TAG_FILTER)"
    )
    lp.add_argument(
        "--lake", help="lake root holding pi_points, and landed into with --land (default: OSIPI_LAKE_URI)"
    )
    lp.add_argument(
        "--channel-size",
        type=int,
        default=None,
        help="at most this many streams per WebSocket channel (default: as many as fit --max-url-bytes)",
    )
    lp.add_argument(
        "--max-url-bytes",
        type=int,
        default=None,
        help="longest channel upgrade URL (default: the client's max_url_bytes, 8000; IIS allows 16384)",
    )
    lp.add_argument(
        "--late-allowance",
        type=float,
        default=DEFAULT_LATE_ALLOWANCE_S,
        help="seconds re-read before each stream's coverage on every (re)connect, for values delivered late",
    )
    lp.add_argument(
        "--catch-up-slice",
        type=float,
        default=DEFAULT_CATCH_UP_SLICE_S,
        help="seconds of recorded values per catch-up read (an outage of hours is read in slices)",
    )
    lp.add_argument("--heartbeat-rate", type=int, default=5, help="empty server polls per heartbeat")
    lp.add_argument(
        "--silence-timeout", type=float, default=30.0, help="seconds without any message → reconnect"
    )
    lp.add_argument(
        "--segment-age", type=float, default=0.5, help="seal the open segment after this many seconds"
    )
    lp.add_argument("--segment-bytes", type=int, default=8 << 20, help="seal the open segment at this size")
    lp.add_argument(
        "--land",
        action="store_true",
        help="also land sealed segments into Delta from this process (one service instead of listen + land)",
    )
    _health_arg(lp, DEFAULT_LISTENER_ADDRESS)
    _land_args(lp)
    lp.add_argument("--log-level", default="INFO")

    la = sub.add_parser("land", help="commit sealed spool segments to Delta as they appear (one per spool)")
    la.add_argument("--spool", required=True, help="spool directory the listener writes")
    la.add_argument("--lake", help="lake root (default: OSIPI_LAKE_URI)")
    _health_arg(la, DEFAULT_LANDER_ADDRESS)
    _land_args(la)
    la.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def _health_arg(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--health-address",
        default=default,
        help=f"HOST:PORT of /livez, /readyz and /metrics (default {default}; port 0 = any free port; 'off')",
    )


def _land_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--land-poll", type=float, default=0.1, help="seconds between looks for sealed segments")
    p.add_argument(
        "--land-min-interval",
        type=float,
        default=1.0,
        help="seconds at least between two landings' starts (each landing is a Delta commit and a Dagster event)",
    )
    p.add_argument(
        "--max-batch-bytes",
        type=int,
        default=DEFAULT_MAX_BATCH_BYTES,
        help="spool bytes landed in one commit at most (a backlog lands in slices of this size)",
    )
    p.add_argument("--keep-landed-hours", type=float, default=24.0, help="hours landed segments are kept")
    p.add_argument(
        "--compact-interval",
        type=float,
        default=DEFAULT_COMPACT_INTERVAL_S,
        help="seconds between compactions of the dates landed meanwhile (0 = never; the weekly optimize remains)",
    )
    p.add_argument(
        "--compact-target-bytes",
        type=int,
        default=DEFAULT_COMPACT_TARGET_BYTES,
        help="file size compaction packs small files into (larger files are left alone)",
    )
    p.add_argument(
        "--log-retention-hours",
        type=float,
        default=DEFAULT_LOG_RETENTION_HOURS,
        help="Delta log retention set on the table: older commit files are deleted at each checkpoint; keep it "
        "longer than the report sensor may be stopped (0 = leave the table's delta.logRetentionDuration)",
    )


def _lake(args: argparse.Namespace, env: dict[str, str], settings: Settings | None = None) -> Lake:
    if settings is not None:
        return Lake(args.lake or settings.lake_uri, storage_options=settings.lake_storage_options)
    values = env_settings(env)
    uri = args.lake or values.get("lake_uri") or LakeFields().lake_uri
    return Lake(uri, storage_options=values.get("lake_storage_options") or {})


def _lander(args: argparse.Namespace, lake: Lake, spool: SpoolReader, **kwargs: object) -> Lander:
    return Lander(
        lake,
        spool,
        poll_s=args.land_poll,
        min_interval_s=args.land_min_interval,
        max_batch_bytes=args.max_batch_bytes,
        keep_landed_hours=args.keep_landed_hours,
        compact_interval_s=args.compact_interval,
        compact_target_bytes=args.compact_target_bytes,
        log_retention_hours=args.log_retention_hours or None,
        **kwargs,  # type: ignore[arg-type]
    )


def _serve(args: argparse.Namespace, health: StreamHealth, spool: SpoolReader | Spool) -> HealthServer | None:
    """Start the health endpoint (unless 'off') and record its bound address in the spool's state file."""
    if args.health_address == "off":
        return None
    server = HealthServer(health, args.health_address).start()
    (spool.root / f"{args.command}.address").write_text(server.address)
    return server


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def land_main(args: argparse.Namespace, settings: Settings | None = None) -> int:
    try:
        lake = _lake(args, dict(os.environ), settings)
        reader = SpoolReader(args.spool)
        lander = _lander(args, lake, reader)
    except (SettingsError, SpoolError, ValueError) as exc:
        print(f"lander: {exc}", file=sys.stderr)
        return 2
    stop = _stop_event()
    with lander:
        server = _serve(args, StreamHealth(reader, lander=lander), reader)
        log.info("landing %s into %s", reader.root, lake.table(lander.table).uri)
        try:
            lander.run(stop)
        finally:
            if server is not None:
                server.close()
    return 0


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run `listen` or `land`; `settings` (a PIConnection's) replace the environment contract when given."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per HTTP call would drown the listener's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "land":
        return land_main(args, settings)
    env = dict(os.environ)
    if args.pi_url:
        env["PI_WEB_API_URL"] = args.pi_url
    try:
        if settings is None:
            settings = Settings.from_env(env)
        elif args.pi_url:
            settings = settings.model_copy(update={"pi_web_api_url": args.pi_url})
    except SettingsError as exc:
        print(f"listener: {exc}", file=sys.stderr)
        return 2
    if args.web_id:
        tags = pl.DataFrame({"web_id": args.web_id, "tag": [None] * len(args.web_id)}, schema=TAGS_SCHEMA)
    else:
        lake = Lake(args.lake or settings.lake_uri, storage_options=settings.lake_storage_options)
        tags = tags_matching(lake, args.tag_filter or settings.tag_filter)
        if tags.is_empty():
            print(
                f"listener: no current pi_points row matches {args.tag_filter or settings.tag_filter!r}",
                file=sys.stderr,
            )
            return 2
    stop = _stop_event()
    try:
        spool = Spool(args.spool, max_segment_bytes=args.segment_bytes, max_segment_age_s=args.segment_age)
        lake = _lake(args, env, settings) if args.land else None
    except (SpoolError, SettingsError) as exc:
        print(f"listener: {exc}", file=sys.stderr)
        return 2
    overrides = {} if args.max_url_bytes is None else {"max_url_bytes": args.max_url_bytes}
    with spool, PIWebAPIClient(ClientConfig.from_settings(settings, **overrides)) as client:
        listener = ChannelListener(
            client,
            spool,
            tags,
            channel_size=args.channel_size,
            heartbeat_rate=args.heartbeat_rate,
            silence_timeout_s=args.silence_timeout,
            late_allowance_s=args.late_allowance,
            catch_up_slice_s=args.catch_up_slice,
        )
        lander = None
        if lake is not None:
            try:
                lander = _lander(args, lake, spool, listener_figures=listener.figures, wake=listener.sealed)
            except SpoolError as exc:
                print(f"listener: {exc}", file=sys.stderr)
                return 2
        log.info(
            "listening to %d streams in %d channels; spool %s (recovered %d records)%s",
            tags.height,
            len(listener.channels),
            spool.root,
            spool.recovered_records,
            "; landing in this process" if lander else "",
        )
        server = _serve(args, StreamHealth(spool, listener=listener, lander=lander), spool)
        landing = threading.Event()
        land_thread = None
        if lander is not None:
            land_thread = threading.Thread(target=lander.run, args=(landing,), name="lander", daemon=True)
            land_thread.start()
        try:
            listener.run(stop)
        finally:
            # The listener sealed its last segment on the way out: land it before stopping the lander.
            if lander is not None and land_thread is not None:
                landing.set()
                land_thread.join(60)
                with contextlib.suppress(Exception):  # what fails here waits in ready/ for the next start
                    while lander.land_once() is not None:
                        pass
                lander.close()
            if server is not None:
                server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
