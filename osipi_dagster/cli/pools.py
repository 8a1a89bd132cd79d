"""`osipi pools apply`: each PIConnection's `pool_limit` set on the Dagster instance ($DAGSTER_HOME), so one slow site
cannot take the run workers of the others.

Dagster keeps pool limits in the instance, not in code: the component records `pool` and `pool_limit` in the
definitions' metadata (`osipi/connection/<name>/pool|pool_limit`), and this command sets them, as
`dagster instance concurrency set <pool> <limit>` would. A connection without `pool_limit` is left to the instance's
default (`concurrency: pools: default_limit` in dagster.yaml). `apply_pools` is the same for scripts (the demo).
Dagster is imported only here, when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from osipi_dagster.cli.output import emit, emit_json, table

if TYPE_CHECKING:
    import dagster as dg

PREFIX = "osipi/connection/"
SET, UNCHANGED, DEFAULT = "set", "unchanged", "instance default"


@dataclass(frozen=True)
class PoolSetting:
    """One connection's pool, the limit its YAML asks for, what the instance had, and what was done."""

    connection: str
    pool: str
    limit: int | None
    before: int | None
    action: str


def connection_pools(definitions: dg.Definitions) -> list[tuple[str, str, int | None]]:
    """(connection, pool, pool_limit or None) of every PIConnection in `definitions`, by connection name."""
    values: dict[str, dict[str, Any]] = {}
    for key, value in (definitions.metadata or {}).items():
        if not key.startswith(PREFIX):
            continue
        name, _, field = key[len(PREFIX) :].rpartition("/")
        values.setdefault(name, {})[field] = getattr(value, "value", value)
    return [
        (name, str(v["pool"]), None if v.get("pool_limit") is None else int(v["pool_limit"]))
        for name, v in sorted(values.items())
        if v.get("pool")
    ]


def apply_pools(
    instance: dg.DagsterInstance, definitions: dg.Definitions | None = None, dry_run: bool = False
) -> list[PoolSetting]:
    """Set each connection's pool_limit on `instance` (definitions: the code location's by default); returns what
    was (or, with dry_run, would be) done per connection."""
    if definitions is None:
        definitions = load_definitions()
    storage = instance.event_log_storage
    current = {p.name: p.limit for p in storage.get_pool_limits() if not p.from_default}
    done = []
    for connection, pool, limit in connection_pools(definitions):
        before = current.get(pool)
        if limit is None:
            action = DEFAULT
        elif before == limit:
            action = UNCHANGED
        else:
            action = SET
            if not dry_run:
                storage.set_concurrency_slots(pool, limit)
        done.append(PoolSetting(connection, pool, limit, before, action))
    return done


def load_definitions() -> dg.Definitions:
    """The code location's definitions, as `dg` loads them."""
    import dagster as dg

    from osipi_dagster.definitions import defs

    return defs() if not isinstance(defs, dg.Definitions) else defs  # type: ignore[operator]


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="osipi pools", description="Set each PIConnection's pool_limit on the Dagster instance."
    )
    sub = p.add_subparsers(dest="action", required=True)
    apply = sub.add_parser("apply", help="set every connection's pool limit on $DAGSTER_HOME's instance")
    apply.add_argument("--dry-run", action="store_true", help="show what would be set, set nothing")
    apply.add_argument("--json", action="store_true", help="print JSON instead of columns")
    args = p.parse_args(argv)
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.SupersessionWarning)
    with dg.DagsterInstance.get() as instance:
        done = apply_pools(instance, dry_run=args.dry_run)
        home = instance.root_directory
    if args.json:
        emit_json({"instance": home, "dry_run": args.dry_run, "pools": [asdict(d) for d in done]})
        return 0
    verb = "would set" if args.dry_run else "set"
    rows = [
        [d.connection, d.pool, "" if d.limit is None else str(d.limit), "" if d.before is None else str(d.before),
         f"{verb}" if d.action == SET else d.action]
        for d in done
    ]  # fmt: skip
    emit(f"instance {home}" + (" (dry run: nothing changed)" if args.dry_run else ""))
    emit(
        table(["connection", "pool", "pool_limit", "instance had", "action"], rows)
        if rows
        else "no PIConnection"
    )
    return 0
