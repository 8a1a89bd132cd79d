"""Micro-benchmark of parse+decode of stream-set recorded bodies (issue 17): the orjson + column-lists path against
msgspec (typed Structs, and untyped into dicts/lists). Bodies come from mock_pi (--seed 42, frozen clock), fetched
exactly as the client sends its first stream-set call per URL group; timing is in-process, paths interleaved in
the same run (best of N), so machine load affects every path alike.

    .venv/bin/python bench/bench_decode.py [--tags 2000] [--calls 4] [--repeat 5] [--save DIR | --bodies DIR]

msgspec is a dependency (the client parses stream-set bodies with it: lib/piwebapi/typed.py); `--cpu` times process CPU instead of wall time.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mock_pi.process import start_emulator  # noqa: E402
from osipi_dagster.lib.piwebapi import (  # noqa: E402
    ClientConfig,
    PIWebAPIClient,
    typed,
)
from osipi_dagster.lib.piwebapi import decode as dec  # noqa: E402
from osipi_dagster.lib.piwebapi.pitime import to_pi  # noqa: E402
from osipi_dagster.lib.piwebapi.reads import SET_FIELDS  # noqa: E402

FROZEN = "2024-05-01T12:00:00Z"

try:
    import msgspec
except ImportError:  # optional
    msgspec = None  # type: ignore[assignment]


def fetch_bodies(tags: int, calls: int) -> list[bytes]:
    """Raw bytes of the first `calls` stream-set recorded calls the client plans for all tags × the last hour."""
    emu = start_emulator("--seed", "42", "--tags", str(tags), "--clock", f"frozen:{FROZEN}")
    try:
        with PIWebAPIClient(ClientConfig(emu.api)) as pi:
            web_ids = [w for s in pi.data_servers() for f in pi.iter_points(s) for w in f["web_id"].to_list()]
            end = datetime(2024, 5, 1, 12, tzinfo=UTC)
            start = end - timedelta(hours=1)
            bodies = []
            for group in pi._url_groups(web_ids)[:calls]:
                params = [("webId", w) for w in group] + [
                    ("startTime", to_pi(start)),
                    ("endTime", to_pi(end)),
                    ("boundaryType", "Inside"),
                    ("maxCount", str(pi._max_items)),
                    ("selectedFields", SET_FIELDS),
                ]
                bodies.append(pi.session.request("GET", pi.url("streamsets/recorded", params), parse=False))
            return bodies
    finally:
        emu.stop()


def with_columns(chunks: list[dec.StreamChunk], cols: dec._Columns | None) -> pl.DataFrame:
    """values_frame's own tail (timestamps, ordinals, series) on columns built elsewhere."""
    saved = dec._flat_columns
    dec._flat_columns = lambda _chunks: cols  # type: ignore[assignment]
    try:
        return dec.values_frame(chunks)
    finally:
        dec._flat_columns = saved


def columns_from(items: list[Any], get: Callable[[str], Any]) -> dec._Columns:
    """_flat_columns' output from objects read with attribute getters (Struct fields)."""
    out = dec._Columns()
    out.ts = list(map(get("Timestamp"), items))
    out.good = dec._bool_series(list(map(get("Good"), items)), True)
    out.quest = dec._bool_series(list(map(get("Questionable"), items)), False)
    out.subst = dec._bool_series(list(map(get("Substituted"), items)), False)
    out.annotated = dec._bool_series(list(map(get("Annotated"), items)), False)
    out.num, out.text, out.code, out.system = dec._split_values(list(map(get("Value"), items)))
    return out


_ERRORS = attrgetter("Errors")


def today(body: bytes) -> pl.DataFrame:
    return dec.decode_streamset(orjson.loads(body), "recorded values")


def adopted(body: bytes) -> pl.DataFrame:
    """What the client does since issue 17 (typed.py, with its checks and fallback)."""
    return dec.decode_streamset(typed.parse_streamset(body), "recorded values")


def msgspec_untyped(body: bytes) -> pl.DataFrame:
    return dec.decode_streamset(_raw.decode(body), "recorded values")


if msgspec is not None:

    class TimedValue(msgspec.Struct):
        Timestamp: str
        Value: Any = None
        Good: Any = True
        Questionable: Any = False
        Substituted: Any = False
        Annotated: Any = False
        Errors: Any = None

    class StreamItems(msgspec.Struct):
        WebId: str
        Items: list[TimedValue] = []  # noqa: RUF012 - msgspec copies defaults
        UnitsAbbreviation: str | None = None
        Errors: Any = None

    class StreamSet(msgspec.Struct):
        Items: list[StreamItems] = []  # noqa: RUF012 - msgspec copies defaults

    _typed = msgspec.json.Decoder(StreamSet)

    # The adopted Structs (no GC tracking, strict booleans), without the adopted path's checks and fallback.
    _typed_nogc = msgspec.json.Decoder(typed.StreamSetValues)
    _raw = msgspec.json.Decoder()


def msgspec_typed(body: bytes, decoder: Any = None) -> pl.DataFrame:
    """Typed Structs straight from bytes, columns via attrgetter; Errors checked as the adopted path would."""
    parsed = (decoder or _typed).decode(body)
    streams = parsed.Items
    if any(map(_ERRORS, streams)):
        raise AssertionError("stream Errors: the orjson path would decode (and raise)")
    chunks = [dec.StreamChunk(s.WebId, s.Items, s.UnitsAbbreviation) for s in streams]
    items = [v for s in streams for v in s.Items]
    if any(map(_ERRORS, items)):
        raise AssertionError("value Errors: the orjson path would decode (and raise)")
    return with_columns([c for c in chunks if c.items], columns_from(items, attrgetter))


def best_of(
    paths: dict[str, Callable[[bytes], pl.DataFrame]],
    bodies: list[bytes],
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Best time per path over `repeat` rounds; within a round every path runs once, in rotating order. `clock`
    time.process_time counts only this process's CPU time, which waiting for a core on a loaded machine does not
    inflate."""
    best = dict.fromkeys(paths, float("inf"))
    names = list(paths)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()  # garbage of the previous path is not charged to this one
            t0 = clock()
            for b in bodies:
                paths[name](b)
            best[name] = min(best[name], clock() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--save", type=Path, default=None, help="write the raw bodies here")
    ap.add_argument("--bodies", type=Path, default=None, help="time bodies saved earlier with --save instead")
    ap.add_argument("--cpu", action="store_true", help="CPU time of this process instead of wall time")
    ap.add_argument("--only", action="store_true", help="time only the orjson path and the adopted one")
    args = ap.parse_args()
    if args.bodies:
        bodies = [p.read_bytes() for p in sorted(args.bodies.glob("streamset_recorded_*.json"))]
    else:
        bodies = fetch_bodies(args.tags, args.calls)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(bodies):
            (args.save / f"streamset_recorded_{i}.json").write_bytes(b)
    reference = [today(b) for b in bodies]
    rows = sum(len(f) for f in reference)
    print(
        f"{len(bodies)} bodies, {sum(f['web_id'].n_unique() for f in reference)} streams, {sum(map(len, bodies)) / 1e6:.1f} MB, {rows} values"
    )
    parse_only: dict[str, Callable[[bytes], Any]] = {"orjson.loads": orjson.loads}
    paths: dict[str, Callable[[bytes], pl.DataFrame]] = {"orjson + columns (before)": today}
    if msgspec is not None:
        paths["msgspec untyped + columns"] = msgspec_untyped
        paths["msgspec typed Structs + attrgetter"] = msgspec_typed
        paths["msgspec typed, the adopted Structs"] = lambda b: msgspec_typed(b, _typed_nogc)
        paths["adopted: typed.parse_streamset"] = adopted
        parse_only["msgspec typed decode, the adopted Structs"] = _typed_nogc.decode
        parse_only["msgspec untyped decode"] = _raw.decode
        parse_only["msgspec typed decode"] = _typed.decode
        for name, fn in paths.items():
            same = all(fn(b).equals(ref) for b, ref in zip(bodies, reference, strict=True))
            print(f"  {name}: frames identical to the orjson path's: {same}")
    else:
        print("  msgspec not importable: only the orjson path is timed")
    if args.only:
        paths = {k: v for k, v in paths.items() if k.startswith(("orjson", "adopted"))}
        parse_only = {"orjson.loads": orjson.loads}
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    clock = time.process_time if args.cpu else time.perf_counter
    print(f"clock: {'process CPU time' if args.cpu else 'wall time'}")
    parse = best_of(parse_only, bodies, args.repeat, clock)
    full = best_of(paths, bodies, args.repeat, clock)
    print(f"load average after:  {Path('/proc/loadavg').read_text().strip()}")
    print(f"parse only (best of {args.repeat}):")
    for name, t in parse.items():
        print(f"  {name:38s} {t * 1e3:8.1f} ms")
    base = full["orjson + columns (before)"]
    print(f"parse + decode (best of {args.repeat}):")
    for name, t in full.items():
        print(
            f"  {name:38s} {t * 1e3:8.1f} ms  {(base - t) / base * 100:+6.1f} % vs before  {rows / t / 1e6:.2f} M values/s"
        )


if __name__ == "__main__":
    main()
