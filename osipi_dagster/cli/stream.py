"""`osipi stream listen|land [--connection NAME] [options]`: the streaming processes of one connection.

One listener (and one lander) per connection: `--connection NAME` (a PIConnection's folder, or a path to its
defs.yaml) gives the PI settings, the tag filter, the lake (its sub-path) and the spool (`stream.directory`, default
`./data/spool/<name>`) of that connection; without it, the environment contract as `python -m
osipi_dagster.lib.streaming` reads it. Every other option is `python -m osipi_dagster.lib.streaming`'s, passed on;
`--spool`, `--lake` and `--health-address` given explicitly win. A connection's health endpoint defaults to a free
port (several listeners share a host), written to `<spool>/listen.address` / `land.address`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from osipi_dagster.cli.connection import Loaded, load
from osipi_dagster.cli.output import emit
from osipi_dagster.lib.settings import SettingsError

ANY_FREE_PORT = "127.0.0.1:0"


def _given(rest: Sequence[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in rest)


def forwarded(command: str, loaded: Loaded, rest: Sequence[str]) -> list[str]:
    """The argv of `python -m osipi_dagster.lib.streaming` for this connection: its spool, lake and health address
    unless given in `rest`."""
    argv = [command, *rest]
    if not _given(rest, "--spool"):
        argv += ["--spool", loaded.spool_directory]
    if not _given(rest, "--lake"):
        argv += ["--lake", loaded.lake_root]
    if loaded.name is not None and not _given(rest, "--health-address"):
        argv += ["--health-address", ANY_FREE_PORT]
    return argv


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="osipi stream",
        description="Run one connection's channel listener or lander (options after the command are "
        "`python -m osipi_dagster.lib.streaming listen|land`'s; see --help there).",
    )
    p.add_argument("command", choices=("listen", "land"))
    p.add_argument("--connection", metavar="NAME",
                   help="a PIConnection (osipi_dagster/defs/NAME/defs.yaml, or a path to a defs.yaml); "
                        "default: the PI_* / OSIPI_* environment variables")  # fmt: skip
    args, rest = p.parse_known_args(argv)
    try:
        loaded = load(args.connection)
    except SettingsError as exc:
        emit(f"osipi stream: settings: {exc}")
        return 2
    from osipi_dagster.lib.streaming.__main__ import main as streaming_main

    return streaming_main(forwarded(args.command, loaded, rest), settings=loaded.settings)
