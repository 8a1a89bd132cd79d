"""CLI of the channel listener: `python -m osipi_dagster.lib.streaming listen --spool DIR [--web-id W ...]`.

Connection and auth come from the environment contract (PI_WEB_API_URL, PI_AUTH_METHOD, ...); SIGTERM/SIGINT
stop it cleanly (the open segment is sealed); SIGKILL loses nothing either, the next start recovers the spool.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

import polars as pl

from osipi_dagster.lib.lake import Lake
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient
from osipi_dagster.lib.settings import Settings, SettingsError
from osipi_dagster.lib.streaming.listener import (
    DEFAULT_LATE_ALLOWANCE_S,
    TAGS_SCHEMA,
    ChannelListener,
    tags_matching,
)
from osipi_dagster.lib.streaming.spool import Spool, SpoolError


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
    lp.add_argument("--lake", help="lake root holding pi_points (default: OSIPI_LAKE_URI)")
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
    lp.add_argument("--heartbeat-rate", type=int, default=5, help="empty server polls per heartbeat")
    lp.add_argument(
        "--silence-timeout", type=float, default=30.0, help="seconds without any message → reconnect"
    )
    lp.add_argument(
        "--segment-age", type=float, default=2.0, help="seal the open segment after this many seconds"
    )
    lp.add_argument("--segment-bytes", type=int, default=8 << 20, help="seal the open segment at this size")
    lp.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per HTTP call would drown the listener's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    env = dict(os.environ)
    if args.pi_url:
        env["PI_WEB_API_URL"] = args.pi_url
    try:
        settings = Settings.from_env(env)
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
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        spool = Spool(args.spool, max_segment_bytes=args.segment_bytes, max_segment_age_s=args.segment_age)
    except SpoolError as exc:
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
        )
        logging.getLogger(__name__).info(
            "listening to %d streams in %d channels; spool %s (recovered %d records)",
            tags.height,
            len(listener.channels),
            spool.root,
            spool.recovered_records,
        )
        listener.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
