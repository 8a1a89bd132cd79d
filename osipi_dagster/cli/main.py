"""The `osipi` console script: `osipi check`, `osipi browse tags|af`, `osipi stream listen|land` and `osipi pools
apply` (only the last imports Dagster).

Exit codes: 0 healthy / done, 1 a check failed or PI refused a browse request, 2 the connection's settings are wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from osipi_dagster.cli import browse, check, pools, stream
from osipi_dagster.cli.connection import Loaded, load
from osipi_dagster.cli.output import emit, emit_json, redact, table
from osipi_dagster.lib.piwebapi import ClientConfig, PIWebAPIClient, PIWebAPIError
from osipi_dagster.lib.settings import SettingsError

MARK = {check.OK: "ok", check.WARN: "WARN", check.FAIL: "FAIL", check.SKIP: "skip"}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--connection", metavar="NAME",
                        help="a PIConnection component (osipi_dagster/defs/NAME/defs.yaml, or a path to a defs.yaml); "
                             "default: the PI_* environment variables")  # fmt: skip
    common.add_argument("--json", action="store_true", help="print JSON instead of columns")
    p = argparse.ArgumentParser(prog="osipi", description="Operator tools for PI Web API connections.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", parents=[common], help="test a connection and print a verdict with fixes")
    b = sub.add_parser("browse", help="search tags or walk the AF tree").add_subparsers(
        dest="what", required=True
    )
    tags = b.add_parser("tags", parents=[common], help="PI point query, e.g. 'name:SINU*' or 'Tank\\ 12*'")
    tags.add_argument("query", help="PI point query language (name:…, pointtype:…, AND/OR, \\-escapes)")
    tags.add_argument("--limit", type=int, default=1000, help="at most this many tags (default 1000)")
    af = b.add_parser("af", parents=[common], help="walk AF: databases → elements → children/attributes")
    af.add_argument(
        "path", nargs="?", help="\\\\AFSERVER\\Database or an element path (default: all databases)"
    )
    af.add_argument("--depth", type=int, default=1, help="levels of children to list (default 1)")
    # Parsed by their own modules (main() hands them the rest of the command line); listed here for --help.
    sub.add_parser(
        "stream", add_help=False, help="run one connection's listener or lander: stream listen|land"
    )
    sub.add_parser("pools", add_help=False, help="set each connection's pool_limit on the Dagster instance")
    return p


def _client(loaded: Loaded) -> PIWebAPIClient:
    return PIWebAPIClient(ClientConfig.from_settings(loaded.settings, max_retries=1, retry_budget_s=10.0))


def _check(loaded: Loaded, as_json: bool) -> int:
    s = loaded.settings
    checker = check.Checker(s, from_env=loaded.source == "environment")
    steps = checker.run()
    healthy, line = check.verdict(steps)
    if as_json:
        emit_json({"connection": loaded.source, "url": s.pi_web_api_url, "auth_method": s.auth_method,
                   "healthy": healthy, "verdict": line,
                "facts": checker.facts, "steps": check.as_json(steps)}, s)  # fmt: skip
    else:
        emit(f"connection {loaded.source}: {s.pi_web_api_url} ({s.auth_method})", s)
        rows = [[MARK[st.status], st.name, st.detail] for st in steps]
        emit(table(["", "step", "result"], rows), s)
        for st in steps:
            if st.status in (check.FAIL, check.WARN) and st.fix:
                emit(f"  fix {st.name}: {st.fix}", s)
        emit(f"verdict: {line}", s)
    return 0 if healthy else 1


def _filter_line(loaded: Loaded) -> str:
    s = loaded.settings
    return (f"connection {loaded.source}: data servers {', '.join(s.data_servers) or 'all'}; "
            f"tag filter {s.tag_filter!r}; AF databases {', '.join(s.af_databases) or 'all'}")  # fmt: skip


def _browse_tags(loaded: Loaded, query: str, limit: int, as_json: bool) -> int:
    with _client(loaded) as client:
        rows = browse.search_tags(client, loaded.settings, query, limit)
    picked = sum(r["selected"] for r in rows)
    if as_json:
        emit_json({"connection": loaded.source, "query": query, "tag_filter": loaded.settings.tag_filter,
                   "count": len(rows), "selected": picked, "tags": rows}, loaded.settings)  # fmt: skip
        return 0
    emit(_filter_line(loaded), loaded.settings)
    cols = [[r["server"], r["name"], r["point_type"], r["units"], "yes" if r["selected"] else "no", r["descriptor"]]
            for r in rows]  # fmt: skip
    emit(table(["server", "tag", "type", "units", "selected", "descriptor"], cols), loaded.settings)
    emit(
        f"{len(rows)} tags match {query!r}; the connection's tag filter picks {picked} of them",
        loaded.settings,
    )
    return 0


def _browse_af(loaded: Loaded, path: str | None, depth: int, as_json: bool) -> int:
    with _client(loaded) as client:
        nodes = browse.AFBrowser(client, loaded.settings).walk(path, max(depth, 0))
    if as_json:
        emit_json({"connection": loaded.source, "af_databases": loaded.settings.af_databases,
                   "nodes": [n.as_dict() for n in nodes]}, loaded.settings)  # fmt: skip
        return 0
    emit(_filter_line(loaded), loaded.settings)
    emit(table(["name", "kind", "template", "children", "selected"], browse.flatten(nodes)), loaded.settings)
    for n in nodes:
        if n.attributes:
            attrs = [[a["name"], a["type"], a["data_reference"], a["config"]] for a in n.attributes]
            emit(f"\nattributes of {n.path}:", loaded.settings)
            emit(table(["attribute", "type", "data reference", "config"], attrs), loaded.settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["stream"]:
        return stream.main(given[1:])
    if given[:1] == ["pools"]:
        return pools.main(given[1:])
    args = _parser().parse_args(given)
    try:
        loaded = load(args.connection)
    except SettingsError as exc:
        if args.json:
            emit_json({"healthy": False, "verdict": f"UNHEALTHY: settings: {exc}"})
        else:
            emit(f"verdict: UNHEALTHY: settings: {exc}")
        return 2
    try:
        if args.command == "check":
            return _check(loaded, args.json)
        if args.what == "tags":
            return _browse_tags(loaded, args.query, args.limit, args.json)
        return _browse_af(loaded, args.path, args.depth, args.json)
    except PIWebAPIError as exc:
        sys.stderr.write(redact(f"osipi: {exc}", loaded.settings) + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
