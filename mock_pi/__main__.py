"""Command line of the emulator: `python -m mock_pi --port N --tags N --seed S ...`, one flag per config field.

Binds 127.0.0.1 by default and serves with uvicorn until interrupted.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Sequence

from mock_pi.config import AUTH_MODES, EmulatorConfig


def build_parser() -> argparse.ArgumentParser:
    d = EmulatorConfig()
    p = argparse.ArgumentParser(prog="python -m mock_pi", description="A faithful PI Web API emulator.")
    p.add_argument("--host", default=d.host, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=d.port, help="TCP port (0 = any free port)")
    p.add_argument("--tags", type=int, default=d.tags, help="number of PI points")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of every generated object and value")
    p.add_argument(
        "--faults", default=d.faults, help="fault profile, e.g. none, flaky, latency:20ms+ratelimit"
    )
    p.add_argument("--auth", default=d.auth, choices=AUTH_MODES)
    p.add_argument("--username", default=d.username)
    p.add_argument("--password", default=d.password)
    p.add_argument("--oidc-client-id", default=d.oidc_client_id)
    p.add_argument("--oidc-client-secret", default=d.oidc_client_secret)
    p.add_argument("--token-ttl-s", type=int, default=d.token_ttl_s)
    p.add_argument("--max-returned-items", type=int, default=d.max_returned_items)
    p.add_argument("--admin", action="store_true", help="enable /admin endpoints (clock, edits, faults)")
    p.add_argument("--clock", default=d.clock, help="real | frozen:<ISO> | offset:<ISO>")
    p.add_argument("--clock-rate", type=float, default=d.clock_rate, help="emulator seconds per real second")
    p.add_argument(
        "--value-rate",
        type=int,
        default=d.value_rate,
        help="values per second as a multiple of the default (every spacing and scan period divided; real time)",
    )
    p.add_argument("--data-servers", type=int, default=d.data_servers)
    p.add_argument("--af-databases", type=int, default=d.af_databases)
    p.add_argument("--elements-per-db", type=int, default=d.elements_per_db)
    p.add_argument("--event-frames-per-day", type=int, default=d.event_frames_per_day)
    p.add_argument("--channel-poll-ms", type=int, default=d.channel_poll_ms)
    p.add_argument(
        "--keytab",
        default=d.keytab,
        help="service keytab (HTTP/<host>) for --auth negotiate, or Negotiate in any",
    )
    p.add_argument("--tls-cert", default=d.tls_cert, help="PEM server certificate: serve https:// and wss://")
    p.add_argument("--tls-key", default=d.tls_key, help="PEM private key of --tls-cert")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    args = build_parser().parse_args(argv)
    return EmulatorConfig(**vars(args))


# Stream-set URLs and channel handshakes listing thousands of WebIds exceed the default 8 KiB line/event limits
# of websockets and h11; allow 1 MiB so one channel can subscribe thousands of streams.
MAX_REQUEST_LINE = 1 << 20


def check_tls(config: EmulatorConfig) -> None:
    """Load the certificate and key once here, so a wrong path or a key that does not match the certificate is a
    one-line error instead of a traceback from inside uvicorn's startup."""
    if config.tls_cert is None or config.tls_key is None:
        return
    for flag, path in (("--tls-cert", config.tls_cert), ("--tls-key", config.tls_key)):
        if not os.path.isfile(path):
            raise ValueError(f"{flag} {path!r} is not a file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load --tls-cert {config.tls_cert!r} with --tls-key {config.tls_key!r} "
            f"(PEM certificate and its matching private key expected): {exc}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    # websockets reads this when first imported (by uvicorn), so it must be set before uvicorn is imported.
    os.environ.setdefault("WEBSOCKETS_MAX_LINE_LENGTH", str(MAX_REQUEST_LINE))
    import uvicorn

    from mock_pi.app import create_app

    try:
        config = config_from_args(argv)
        check_tls(config)
        app = create_app(config)
    except ValueError as exc:
        print(f"mock_pi: invalid configuration: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        h11_max_incomplete_event_size=MAX_REQUEST_LINE,
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
