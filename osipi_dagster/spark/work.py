"""What the `osipi` source does with PI, without Spark: plan a table's work on the driver, read it on executors.

`plan(client, opts)` resolves the window on the server's clock, discovers the tags (or servers, databases,
elements), sizes the work (planning.py) and returns one `Work` per input partition. `Work.frames(client)` runs on an
executor and yields polars frames of exactly the table's schema (tables.py). Only the client's public methods are
used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from osipi_dagster.lib.landing.tables import SOURCE_RECORDED, TIMESERIES_SCHEMA
from osipi_dagster.lib.piwebapi import PIWebAPIClient
from osipi_dagster.lib.piwebapi.models import AssetDatabase, DataServer
from osipi_dagster.lib.piwebapi.pitime import parse_interval, parse_time
from osipi_dagster.lib.piwebapi.schema import UTC_US
from osipi_dagster.spark.options import OptionError, SourceOptions
from osipi_dagster.spark.planning import Slice, balance, even_slices, recorded_slices
from osipi_dagster.spark.tables import TABLE_SCHEMAS

log = logging.getLogger(__name__)

# af_attributes: elements per unit of work (iter_attributes lists 200 per batch call).
ELEMENTS_PER_SLICE = 2000
_ANCHORS = (datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2017, 11, 29, 22, 33, 44, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------------------------
# Driver side: time, tags, servers


def resolve_times(client: PIWebAPIClient, *texts: str) -> list[datetime]:
    """PI time expressions → UTC datetimes, relative ones ('*', '*-1h', 't') on the server's clock, read once so
    every partition of a query shares one window."""
    relative = [t for t in texts if parse_time(t, _ANCHORS[0]) != parse_time(t, _ANCHORS[1])]
    now = client.server_time() if relative else None
    return [parse_time(t, now) for t in texts]


def select_servers(client: PIWebAPIClient, wanted: Sequence[str]) -> list[DataServer]:
    """The data servers named by the data_servers option (case-insensitive), or all of them."""
    servers = client.data_servers()
    if not wanted:
        return servers
    by_name = {s.name.lower(): s for s in servers}
    missing = [w for w in wanted if w.lower().lstrip("\\") not in by_name]
    if missing:
        known = ", ".join(sorted(s.name for s in servers)) or "none"
        raise OptionError(
            f"osipi: option data_servers names unknown servers {', '.join(missing)}; known: {known}."
        )
    return [by_name[w.lower().lstrip("\\")] for w in wanted]


def select_databases(client: PIWebAPIClient, wanted: Sequence[str]) -> list[AssetDatabase]:
    """The AF databases named by the af_databases option (paths, case-insensitive), or all of them."""
    databases = [db for server in client.asset_servers() for db in client.asset_databases(server)]
    if not wanted:
        return databases
    by_path = {db.path.lower().lstrip("\\"): db for db in databases}
    missing = [w for w in wanted if w.lower().lstrip("\\") not in by_path]
    if missing:
        known = ", ".join(sorted(db.path for db in databases)) or "none"
        raise OptionError(
            f"osipi: option af_databases names unknown databases {', '.join(missing)}; known: {known}."
        )
    return [by_path[w.lower().lstrip("\\")] for w in wanted]


def discover_tags(client: PIWebAPIClient, opts: SourceOptions) -> pl.DataFrame:
    """(web_id, tag) of the points matching tag_filter on the selected data servers, sorted by tag, as the
    Dagster asset orders its catalogue."""
    servers = select_servers(client, opts.settings.data_servers)
    pages = [
        p.select("web_id", "name") for s in servers for p in client.iter_points(s, opts.settings.tag_filter)
    ]
    frame = pl.concat(pages) if pages else pl.DataFrame(schema={"web_id": pl.Utf8, "name": pl.Utf8})
    return frame.rename({"name": "tag"}).unique("web_id", keep="first").sort("tag", "web_id")


# ---------------------------------------------------------------------------------------------------------------
# Units of work: one per input partition, picklable, no secrets


@dataclass(frozen=True)
class Work:
    """What one input partition reads; `frames(client)` yields frames of TABLE_SCHEMAS[table]."""

    table: str
    slices: tuple[Slice, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    ingested_at: datetime | None = None
    servers: tuple[DataServer, ...] = ()
    databases: tuple[AssetDatabase, ...] = ()
    tag_filter: str = "*"
    interval: str | None = None
    summary_types: tuple[str, ...] = ()
    summary_duration: str | None = None
    calculation_basis: str = "TimeWeighted"
    element_databases: dict[str, str] = field(default_factory=dict)

    @property
    def weight(self) -> float:
        return sum(s.weight for s in self.slices)

    def frames(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        reader = getattr(self, f"_{self.table}")
        schema = TABLE_SCHEMAS[self.table]
        for frame in reader(client):
            if frame.height:
                yield frame.select(list(schema)).cast(dict(schema))

    def _recorded(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        for s in self.slices:
            for page in client.iter_recorded(list(s.web_ids), s.start, s.end):
                yield land(page, self.tags, self.ingested_at or datetime.now(UTC), SOURCE_RECORDED)

    def _interpolated(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        for s in self.slices:
            yield client.interpolated(list(s.web_ids), s.start, s.end, parse_interval(self.interval or ""))

    def _summary(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        for s in self.slices:
            yield client.summary(
                list(s.web_ids),
                s.start,
                s.end,
                self.summary_types,
                self.summary_duration,
                calculation_basis=self.calculation_basis,
            )

    def _points(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        for server in self.servers:
            yield from client.iter_points(server, self.tag_filter)

    def _af_elements(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        for database in self.databases:
            yield from client.iter_elements(database)

    def _af_attributes(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        ids = [w for s in self.slices for w in s.web_ids]
        for page in client.iter_attributes(ids):
            yield page.with_columns(
                pl.col("element_web_id")
                .replace_strict(self.element_databases, default=None)
                .alias("database")
            )

    def _event_frames(self, client: PIWebAPIClient) -> Iterator[pl.DataFrame]:
        ingested_at = self.ingested_at or datetime.now(UTC)
        by_id = {db.web_id: db for db in self.databases}
        for s in self.slices:  # one slice = one database (its web id) over one UTC day at most
            frames = list(client.iter_event_frames(by_id[s.web_ids[0]], s.start, s.end))
            if not frames:
                continue
            # As the event_frames asset: each frame lives in the window it starts in, once.
            yield (
                pl.concat(frames)
                .filter((pl.col("start") >= s.start) & (pl.col("start") < s.end))
                .unique("web_id", keep="first", maintain_order=True)
                .with_columns(
                    pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
                    pl.col("start").dt.date().alias("date"),
                )
            )


def land(page: pl.DataFrame, tags: dict[str, str], ingested_at: datetime, source: str) -> pl.DataFrame:
    """Client values → pi_timeseries rows: tag name, ingested_at, source and date added, as the asset lands them."""
    return page.with_columns(
        pl.col("web_id").replace_strict(tags, default=None, return_dtype=pl.Utf8).alias("tag"),
        pl.lit(ingested_at, dtype=UTC_US).alias("ingested_at"),
        pl.lit(source, dtype=pl.Utf8).alias("source"),
        pl.col("timestamp").dt.date().alias("date"),
    ).select(list(TIMESERIES_SCHEMA))


# ---------------------------------------------------------------------------------------------------------------
# Planning per table


def plan(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    """The input partitions of a batch read (driver side; makes the discovery and sizing calls)."""
    return globals()[f"_plan_{opts.table}"](client, opts)


def _window(client: PIWebAPIClient, opts: SourceOptions) -> tuple[datetime, datetime]:
    start, end = resolve_times(client, opts.start or "*", opts.end)
    if end < start:
        raise OptionError(
            f"osipi: end ({opts.end!r} = {end.isoformat()}) is before start ({start.isoformat()})."
        )
    return start, end


def _plan_recorded(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    start, end = _window(client, opts)
    tags = discover_tags(client, opts)
    ids = tags["web_id"].to_list()
    ingested_at = datetime.now(UTC)
    if not ids or end <= start:
        return []
    if opts.sizing == "count":
        counts = dict(client.recorded_counts(ids, start, end).iter_rows())
        slices = recorded_slices(ids, counts, start, end, opts.values_per_partition)
    else:
        slices = even_slices(ids, start, end, 1.0, opts.values_per_partition, parts=opts.max_partitions)
    names = dict(tags.iter_rows())
    works = []
    for group in balance(slices, opts.max_partitions):
        own = {w for s in group for w in s.web_ids}
        works.append(Work("recorded", tuple(group), {w: names[w] for w in own}, ingested_at=ingested_at))
    log.info(
        "osipi recorded %s..%s: %d tags, %d slices, %d partitions, %.0f values expected",
        start.isoformat(),
        end.isoformat(),
        len(ids),
        len(slices),
        len(works),
        sum(s.weight for s in slices),
    )
    return works


def _plan_interpolated(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    start, end = _window(client, opts)
    ids = discover_tags(client, opts)["web_id"].to_list()
    step = parse_interval(opts.interval or "")
    per_tag = int((end - start) / step) + 1
    slices = even_slices(ids, start, end, per_tag, opts.values_per_partition)
    return [
        Work("interpolated", tuple(g), interval=opts.interval) for g in balance(slices, opts.max_partitions)
    ]


def _plan_summary(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    start, end = _window(client, opts)
    ids = discover_tags(client, opts)["web_id"].to_list()
    intervals = 1
    if opts.summary_duration:
        intervals = max(1, -(-(end - start) // parse_interval(opts.summary_duration)))
    slices = even_slices(ids, start, end, intervals * len(opts.summary_types), opts.values_per_partition)
    return [
        Work(
            "summary",
            tuple(g),
            summary_types=opts.summary_types,
            summary_duration=opts.summary_duration,
            calculation_basis=opts.calculation_basis,
        )
        for g in balance(slices, opts.max_partitions)
    ]


def _by_item(items: Sequence[DataServer] | Sequence[AssetDatabase], cap: int) -> list[tuple]:
    """Servers or databases dealt onto at most `cap` partitions (one unit of work each)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    by_id = {item.web_id: item for item in items}
    groups = balance([Slice((item.web_id,), epoch, epoch, 1.0) for item in items], cap)
    return [tuple(by_id[s.web_ids[0]] for s in group) for group in groups]


def _plan_points(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    servers = select_servers(client, opts.settings.data_servers)
    return [
        Work("points", servers=group, tag_filter=opts.settings.tag_filter)
        for group in _by_item(servers, opts.max_partitions)
    ]


def _plan_af_elements(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    databases = select_databases(client, opts.settings.af_databases)
    return [Work("af_elements", databases=group) for group in _by_item(databases, opts.max_partitions)]


def _plan_af_attributes(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    # The elements are listed on the driver (as the af_attributes asset reads af_elements first); their
    # attributes, the expensive part, are read on the executors.
    owner: dict[str, str] = {}
    for db in select_databases(client, opts.settings.af_databases):
        for page in client.iter_elements(db):
            owner.update(dict(page.select("web_id", "database").iter_rows()))
    ids = list(owner)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    slices = [
        Slice(tuple(ids[i : i + ELEMENTS_PER_SLICE]), epoch, epoch, len(ids[i : i + ELEMENTS_PER_SLICE]))
        for i in range(0, len(ids), ELEMENTS_PER_SLICE)
    ]
    return [
        Work("af_attributes", tuple(g), element_databases={w: owner[w] for s in g for w in s.web_ids})
        for g in balance(slices, opts.max_partitions)
    ]


def _plan_event_frames(client: PIWebAPIClient, opts: SourceOptions) -> list[Work]:
    start, end = _window(client, opts)
    ingested_at = datetime.now(UTC)
    databases = select_databases(client, opts.settings.af_databases)
    slices = [
        Slice((db.web_id,), a, b, (b - a).total_seconds())
        for db in databases
        for a, b in day_slices(start, end)
    ]
    by_id = {db.web_id: db for db in databases}
    works = []
    for group in balance(slices, opts.max_partitions):
        used = tuple(by_id[w] for w in dict.fromkeys(s.web_ids[0] for s in group))
        works.append(Work("event_frames", tuple(group), databases=used, ingested_at=ingested_at))
    return works


def day_slices(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights, as the daily event_frames partitions are."""
    out = []
    a = start
    while a < end:
        midnight = datetime(a.year, a.month, a.day, tzinfo=UTC) + timedelta(days=1)
        b = min(end, midnight)
        out.append((a, b))
        a = b
    return out
