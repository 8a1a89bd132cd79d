"""`PIWebAPIClient`: discovery (points, AF hierarchy, event frames) and complete time-series reads as polars frames.

All HTTP goes through `HTTPSession` (retries, breaker, stats); bulk reads use stream sets chunked by URL length and
POST /batch for per-stream continuations, in parallel on a bounded thread pool.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import polars as pl

from osipi_dagster.lib.piwebapi import batch as batch_mod
from osipi_dagster.lib.piwebapi.channels import ChannelStream
from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.decode import (
    StreamChunk,
    check_errors,
    decode_end_values,
    decode_streamset,
    decode_summary,
    decode_timed_values,
    malformed,
    parse_timestamps,
    streamset_chunks,
    values_frame,
)
from osipi_dagster.lib.piwebapi.errors import (
    NotFoundError,
    PIWebAPIError,
    ResponseError,
    TooManyValuesError,
)
from osipi_dagster.lib.piwebapi.http import ClientStats, HTTPSession
from osipi_dagster.lib.piwebapi.models import AssetDatabase, AssetServer, DataServer
from osipi_dagster.lib.piwebapi.pitime import TimeLike, format_span, parse_interval, parse_time, to_pi
from osipi_dagster.lib.piwebapi.schema import (
    ATTRIBUTES_SCHEMA,
    COUNTS_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    ELEMENTS_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    POINTS_SCHEMA,
    SUMMARY_SCHEMA,
    VALUES_SCHEMA,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
# The event-weighted calculation basis whose every interval is half-open, [earlier, later), whatever the interval
# layout: compare its summaries with a half-open read. Plain EventWeighted is not: with one interval PI counts the
# events at *both* boundaries (AVEVA, topics/calculation-basis.html), so a value stamped exactly at the window end
# would be counted by PI and not by `recorded(start, end)`.
HALF_OPEN_BASIS = "EventWeightedExcludeMostRecentEvent"
_HEADROOM = 1.2
# selectedFields for value reads: drop Name/Path/Links and the per-value UnitsAbbreviation (~17 % fewer bytes and
# less server work). Errors stay selected so handled errors can never be filtered away.
_VALUE_FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated", "Errors")
SET_FIELDS = ";".join(
    ["Items.WebId", "Items.UnitsAbbreviation", "Items.Errors"] + [f"Items.Items.{f}" for f in _VALUE_FIELDS]
)
STREAM_FIELDS = ";".join(["UnitsAbbreviation", "Errors"] + [f"Items.{f}" for f in _VALUE_FIELDS])
_TIMESTAMP = itemgetter("Timestamp")
# How long one read of the server's clock anchors relative times ('*-1h') for following calls.
_SERVER_CLOCK_TTL_S = 1.0
# Two anchors far apart: an expression that parses the same on both does not depend on "now".
_ANCHORS = (datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2017, 11, 29, 22, 33, 44, tzinfo=UTC))
# AF's sentinel for an event frame that has not ended.
_OPEN_END_YEAR = 9999


def _last_segment(url: str | None) -> str | None:
    """The web id at the end of an object link such as https://h/piwebapi/elements/{webId}."""
    if not url:
        return None
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None


def _point_path(config_string: str | None) -> str | None:
    r"""'\\SERVER\tag;UOM=m' → '\\SERVER\tag' (None for relative or substituted references)."""
    if not config_string:
        return None
    head = config_string.split(";", 1)[0].split("?", 1)[0].strip()
    return head if head.startswith("\\\\") and head.count("\\") >= 3 else None


def _static_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return None if value.get("Name") is None else str(value.get("Name"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _require_timed_value(value: Any, attribute: dict[str, Any]) -> None:
    """A batch sub-response for an attribute's value must be a TimedValue; anything else would become a null."""
    if isinstance(value, dict) and value.get("Timestamp") and "Value" in value:
        check_errors(value, f"the value of attribute {attribute.get('Path')!r}", attribute.get("WebId"))
        return
    raise ResponseError(
        f"PI Web API answered GET /attributes/{attribute.get('WebId')}/value (in POST /batch) for attribute "
        f"{attribute.get('Path')!r} without a TimedValue (Timestamp and Value)",
        method="GET",
        path=f"/attributes/{attribute.get('WebId')}/value (in POST /batch)",
        web_id=attribute.get("WebId"),
        advice="the server sent a malformed value; check PI Web API's version and logs",
    )


def _is_relative(text: str) -> bool:
    """True for PI time expressions anchored on now ('*', '*-1h', 't', 'monday', '15'); False for ISO times."""
    return parse_time(text, _ANCHORS[0]) != parse_time(text, _ANCHORS[1])


def _continued_items(body: Any, web_id: str) -> list[dict[str, Any]]:
    """The values of a continuation sub-response, checked before the skip logic reads their timestamps."""
    path = f"/streams/{web_id}/recorded (in POST /batch)"
    with _reading("GET", path, web_id):
        items = body.get("Items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise malformed("recorded values without a list of Items", web_id)
        check_errors(body, "recorded values", web_id)
        try:
            stamps = list(map(_TIMESTAMP, items))  # one C-level pass
        except (KeyError, TypeError):
            stamps = [None]
        if None in stamps:
            raise malformed("a value without a Timestamp", web_id)
    return items


@contextmanager
def _reading(method: str, path: str, web_id: str | None = None) -> Iterator[None]:
    """Errors from decoding a body name the request: decode.py knows the web id, not the method and path."""
    try:
        yield
    except ResponseError as err:
        if err.path:
            raise
        raise err.reworded(
            f"{err.message}, in the answer to {method} {path}",
            method=method,
            path=path,
            web_id=err.web_id or web_id,
        ) from None


class _StreamState:
    """Per-stream continuation state while a window is read in several calls."""

    __slots__ = ("last_ts", "seen_at_last", "web_id")

    def __init__(self, web_id: str, last_ts: str, seen_at_last: int) -> None:
        self.web_id = web_id
        self.last_ts = last_ts
        self.seen_at_last = seen_at_last


class PIWebAPIClient:
    """One client per PI Web API: a pooled HTTP session, caches (web ids, densities) and the read strategies."""

    def __init__(self, config: ClientConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.session = HTTPSession(config, sleep=sleep)
        self._point_web_ids: dict[str, str] = {}
        self._density: dict[str, float] = {}  # observed recorded values per second, per web id
        self._lock = threading.Lock()
        # MaxReturnedItemsPerCall; lowered when the server says its limit is smaller.
        self._max_items = config.max_items_per_call
        # (server time, time.monotonic() when read): anchors relative time expressions, see _times.
        self._server_clock: tuple[datetime, float] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def __enter__(self) -> PIWebAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"PIWebAPIClient(base_url={self.config.base_url!r}, auth={self.session.auth!r})"

    @property
    def stats(self) -> ClientStats:
        return self.session.stats

    @property
    def max_items_per_call(self) -> int:
        return self._max_items

    # -- generic helpers -----------------------------------------------------------------------------------------
    def get(self, path: str, params: Any = None, *, web_id: str | None = None) -> Any:
        """GET a path relative to the base URL (or an absolute URL) and return its JSON."""
        return self.session.request("GET", path, params=params, web_id=web_id)

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        """Absolute URL for `path` with query parameters (batch sub-requests need absolute URLs)."""
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params)
        return f"{self.config.base_url}/{path.lstrip('/')}" + (f"?{query}" if query else "")

    def iter_collection(
        self, path: str, params: Sequence[tuple[str, str]] = (), *, page_size: int = PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a collection: follows Links.Next, or startIndex+maxCount when the server sends no links."""
        base = [(k, v) for k, v in params if k not in ("startIndex", "maxCount")]
        start = 0
        url: str | None = None
        while True:
            if url is None:
                body = self.get(path, [*base, ("startIndex", str(start)), ("maxCount", str(page_size))])
            else:
                body = self.get(url)
            items = (body or {}).get("Items") or []
            if items:
                yield items
            next_link = ((body or {}).get("Links") or {}).get("Next")
            if next_link:
                # Some servers HTML-escape '&' inside links.
                url = next_link.replace("&amp;", "&")
                start += len(items)
                if not items:
                    return
                continue
            if len(items) < page_size:
                return
            start += len(items)
            url = None

    def batch_get(
        self, urls: dict[str, str], *, web_ids: dict[str, str] | None = None, raise_errors: bool = True
    ) -> tuple[dict[str, Any], dict[str, PIWebAPIError]]:
        """Many GETs in POST /batch requests of at most `batch_size` sub-requests (see batch.get_many)."""
        contents: dict[str, Any] = {}
        errors: dict[str, PIWebAPIError] = {}
        keys = list(urls)
        parts = [keys[i : i + self.config.batch_size] for i in range(0, len(keys), self.config.batch_size)]

        def run(part: list[str]) -> tuple[dict[str, Any], dict[str, PIWebAPIError]]:
            return batch_mod.get_many(
                self.session, {k: urls[k] for k in part}, web_ids=web_ids, raise_errors=False
            )

        for got, errs in self.session.map_ordered(run, parts):
            contents.update(got)
            errors.update(errs)
        if errors and raise_errors:
            raise next(iter(errors.values()))
        return contents, errors

    # -- server -------------------------------------------------------------------------------------------------
    def server_time(self) -> datetime:
        """The server's clock (GET /system/status ServerTime): bounds reads "up to now" without trusting ours."""
        text = (self.get("system/status") or {}).get("ServerTime")
        if not text:
            raise PIWebAPIError(
                "PI Web API GET /system/status returned no ServerTime: reads bounded by the server clock need it",
                method="GET",
                path="/system/status",
            )
        return parse_time(str(text))

    # -- data servers and points ---------------------------------------------------------------------------------
    def data_servers(self) -> list[DataServer]:
        return [DataServer.from_json(i) for page in self.iter_collection("dataservers") for i in page]

    def data_server(self, name_or_path: str) -> DataServer:
        """A data server by name or path (case-insensitive)."""
        want = name_or_path.lower().lstrip("\\")
        for server in self.data_servers():
            if want in (server.name.lower(), server.path.lower().lstrip("\\")):
                return server
        raise PIWebAPIError(
            f"no PI Data Archive named {name_or_path!r} on {self.config.base_url}",
            advice="check PI_DATA_SERVERS against GET /dataservers",
        )

    def _server_web_id(self, server: DataServer | AssetServer | AssetDatabase | str) -> str:
        return server if isinstance(server, str) else server.web_id

    def iter_points(
        self, server: DataServer | str, name_filter: str = "*", *, page_size: int = PAGE_SIZE
    ) -> Iterator[pl.DataFrame]:
        """PI points of a data server matching `name_filter`, one POINTS_SCHEMA frame per page."""
        web_id = self._server_web_id(server)
        server_name = server.name if isinstance(server, DataServer) else None
        params = [("nameFilter", name_filter)]
        for items in self.iter_collection(f"dataservers/{web_id}/points", params, page_size=page_size):
            rows = {k: [] for k in POINTS_SCHEMA}  # type: dict[str, list[Any]]
            for p in items:
                path = p.get("Path", "")
                rows["web_id"].append(p.get("WebId"))
                rows["server"].append(server_name or path.lstrip("\\").split("\\", 1)[0])
                rows["name"].append(p.get("Name"))
                rows["path"].append(path)
                rows["descriptor"].append(p.get("Descriptor"))
                rows["point_class"].append(p.get("PointClass"))
                rows["point_type"].append(p.get("PointType"))
                rows["digital_set"].append(p.get("DigitalSetName") or None)
                rows["engineering_units"].append(p.get("EngineeringUnits"))
                rows["step"].append(p.get("Step"))
                rows["future"].append(p.get("Future"))
                rows["span"].append(p.get("Span"))
                rows["zero"].append(p.get("Zero"))
                rows["display_digits"].append(p.get("DisplayDigits"))
                rows["point_id"].append(p.get("Id"))
                if path and p.get("WebId"):
                    self._point_web_ids[path.lower()] = p["WebId"]
            yield pl.DataFrame(rows, schema=POINTS_SCHEMA, strict=False)

    def point_attributes(self, web_id: str) -> dict[str, Any]:
        """All PI point attributes (zero, span, compdev, …) as a name → value dict."""
        body = self.get(f"points/{web_id}/attributes", web_id=web_id)
        return {i["Name"]: i.get("Value") for i in (body or {}).get("Items") or []}

    def point_web_ids(self, paths: Iterable[str]) -> dict[str, str | None]:
        r"""PI point paths ('\\SERVER\tag') → web ids, cached, unknown paths → None; one batch for the misses."""
        paths = list(dict.fromkeys(paths))
        missing = [p for p in paths if p.lower() not in self._point_web_ids]
        if missing:
            urls = {
                str(i): self.url("points", [("path", p), ("selectedFields", "WebId;Path")])
                for i, p in enumerate(missing)
            }
            contents, errors = self.batch_get(urls, raise_errors=False)
            # Only a 404 means "no such point" (None); a 5xx/429 after retries must not look like a missing tag.
            batch_mod.absent_or_raise(errors, {str(i): f"PI point {p!r}" for i, p in enumerate(missing)})
            for i, p in enumerate(missing):
                if str(i) in errors:
                    continue
                body = contents.get(str(i))
                if not isinstance(body, dict) or not body.get("WebId"):
                    raise ResponseError(
                        f"PI Web API answered GET /points (in POST /batch) for PI point {p!r} without a WebId",
                        method="GET",
                        path="/points (in POST /batch)",
                        advice="the server sent a malformed point; check PI Web API's version and logs",
                    )
                self._point_web_ids[p.lower()] = body["WebId"]
        return {p: self._point_web_ids.get(p.lower()) for p in paths}

    # -- AF ------------------------------------------------------------------------------------------------------
    def asset_servers(self) -> list[AssetServer]:
        return [AssetServer.from_json(i) for page in self.iter_collection("assetservers") for i in page]

    def asset_databases(self, server: AssetServer | str) -> list[AssetDatabase]:
        web_id = self._server_web_id(server)
        return [
            AssetDatabase.from_json(i)
            for page in self.iter_collection(f"assetservers/{web_id}/assetdatabases")
            for i in page
        ]

    def asset_database(self, path: str) -> AssetDatabase:
        r"""An AF database by path ('\\AFSERVER\Database')."""
        return AssetDatabase.from_json(self.get("assetdatabases", [("path", path)]))

    def _element_rows(self, items: list[dict[str, Any]], parent: str | None, depth: int, db: str) -> dict:
        rows: dict[str, list[Any]] = {k: [] for k in ELEMENTS_SCHEMA}
        for e in items:
            rows["web_id"].append(e.get("WebId"))
            rows["id"].append(str(e.get("Id", "")))
            rows["name"].append(e.get("Name"))
            rows["description"].append(e.get("Description"))
            rows["path"].append(e.get("Path"))
            rows["parent_web_id"].append(parent)
            rows["depth"].append(depth)
            rows["template"].append(e.get("TemplateName") or None)
            rows["categories"].append(list(e.get("CategoryNames") or []))
            rows["has_children"].append(e.get("HasChildren"))
            rows["database"].append(db)
        return rows

    def iter_elements(
        self, database: AssetDatabase | str, *, page_size: int = PAGE_SIZE
    ) -> Iterator[pl.DataFrame]:
        """The whole element hierarchy, breadth-first, one ELEMENTS_SCHEMA frame per level chunk.

        Level 0 is paged from the database; each next level is fetched with POST /batch (one sub-request per
        parent with children, `batch_size` per call, in parallel), and parents with more than `page_size`
        children are paged further with startIndex. Parent web id and depth come from the traversal itself.
        """
        db_web_id = self._server_web_id(database)
        db_name = database.path if isinstance(database, AssetDatabase) else db_web_id
        parents: list[str] = []
        for items in self.iter_collection(f"assetdatabases/{db_web_id}/elements", page_size=page_size):
            yield pl.DataFrame(self._element_rows(items, None, 0, db_name), schema=ELEMENTS_SCHEMA)
            parents += [e["WebId"] for e in items if e.get("HasChildren", True)]
        depth = 1
        while parents:
            next_parents: list[str] = []
            # (parent web id, startIndex) still to fetch at this depth.
            todo = [(p, 0) for p in parents]
            while todo:
                urls = {
                    f"{i}": self.url(
                        f"elements/{p}/elements", [("startIndex", str(s)), ("maxCount", str(page_size))]
                    )
                    for i, (p, s) in enumerate(todo)
                }
                contents, _ = self.batch_get(urls, web_ids={f"{i}": p for i, (p, _s) in enumerate(todo)})
                more: list[tuple[str, int]] = []
                rows: dict[str, list[Any]] = {k: [] for k in ELEMENTS_SCHEMA}
                for i, (parent, start) in enumerate(todo):
                    items = (contents.get(f"{i}") or {}).get("Items") or []
                    level = self._element_rows(items, parent, depth, db_name)
                    for k in rows:
                        rows[k] += level[k]
                    next_parents += [e["WebId"] for e in items if e.get("HasChildren", True)]
                    if len(items) >= page_size:
                        more.append((parent, start + len(items)))
                if rows["web_id"]:
                    yield pl.DataFrame(rows, schema=ELEMENTS_SCHEMA)
                todo = more
            parents = next_parents
            depth += 1

    def _attribute_rows(
        self, element_web_id: str, items: list[dict[str, Any]], parent_attr: str | None
    ) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {k: [] for k in ATTRIBUTES_SCHEMA}
        for a in items:
            config = a.get("ConfigString") or None
            data_ref = a.get("DataReferencePlugIn") or None
            rows["web_id"].append(a.get("WebId"))
            rows["element_web_id"].append(element_web_id)
            rows["parent_attribute_web_id"].append(parent_attr)
            rows["name"].append(a.get("Name"))
            rows["path"].append(a.get("Path"))
            rows["type"].append(a.get("Type"))
            rows["units"].append(a.get("DefaultUnitsNameAbbreviation") or a.get("DefaultUnitsName") or None)
            rows["data_reference"].append(data_ref)
            rows["config_string"].append(config)
            rows["point_path"].append(_point_path(config) if data_ref == "PI Point" else None)
            rows["point_web_id"].append(None)
            rows["static_value"].append(None)
            rows["categories"].append(list(a.get("CategoryNames") or []))
            rows["is_excluded"].append(a.get("IsExcluded"))
            rows["is_hidden"].append(a.get("IsHidden"))
        return rows

    def iter_attributes(
        self, element_web_ids: Iterable[str], *, chunk: int = 200, static_values: bool = True
    ) -> Iterator[pl.DataFrame]:
        """Attributes (and child attributes) of many elements, ATTRIBUTES_SCHEMA, PI point references resolved.

        One batch per `chunk` elements lists attributes (searchFullHierarchy=true brings child attributes); PI
        point paths from ConfigStrings are resolved to point web ids in one further batch (cached); static
        attribute values are read in a third batch when `static_values`.
        """
        ids = list(element_web_ids)
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            rows: dict[str, list[Any]] = {k: [] for k in ATTRIBUTES_SCHEMA}
            todo = [(e, 0) for e in part]
            while todo:
                urls = {
                    str(i): self.url(
                        f"elements/{e}/attributes",
                        [
                            ("searchFullHierarchy", "true"),
                            ("showExcluded", "true"),
                            ("showHidden", "true"),
                            ("startIndex", str(s)),
                            ("maxCount", str(PAGE_SIZE)),
                        ],
                    )
                    for i, (e, s) in enumerate(todo)
                }
                contents, _ = self.batch_get(urls, web_ids={str(i): e for i, (e, _s) in enumerate(todo)})
                more = []
                for i, (element, s) in enumerate(todo):
                    items = (contents.get(str(i)) or {}).get("Items") or []
                    got = self._attribute_rows(element, items, None)
                    for k in rows:
                        rows[k] += got[k]
                    if len(items) >= PAGE_SIZE:
                        more.append((element, s + len(items)))
                todo = more
            # Child attributes: their path is '<parent path>|<name>', so the parent is found by path.
            by_path = {p: w for p, w in zip(rows["path"], rows["web_id"], strict=True) if p}
            for i, path in enumerate(rows["path"]):
                if path and "|" in path:
                    parent_path = path.rsplit("|", 1)[0]
                    if "|" in parent_path:
                        rows["parent_attribute_web_id"][i] = by_path.get(parent_path)
            point_paths = [p for p in rows["point_path"] if p]
            resolved = self.point_web_ids(point_paths) if point_paths else {}
            rows["point_web_id"] = [resolved.get(p) if p else None for p in rows["point_path"]]
            if static_values:
                static = {
                    str(i): self.url(f"attributes/{w}/value")
                    for i, (w, ref) in enumerate(zip(rows["web_id"], rows["data_reference"], strict=True))
                    if not ref
                }
                if static:
                    # A separate batch, not a RequestTemplate over the listing: the template would also read a
                    # snapshot for every PI Point attribute (most of them) only to throw it away.
                    wids = {k: rows["web_id"][int(k)] for k in static}
                    values, errors = self.batch_get(static, web_ids=wids, raise_errors=False)
                    batch_mod.absent_or_raise(
                        errors, {k: f"attribute {rows['path'][int(k)]!r}" for k in static}
                    )  # 404: the attribute went away since it was listed; its value stays null
                    for key, body in values.items():
                        attribute = {"WebId": wids[key], "Path": rows["path"][int(key)]}
                        _require_timed_value(body, attribute)
                        rows["static_value"][int(key)] = _static_text(body.get("Value"))
            yield pl.DataFrame(rows, schema=ATTRIBUTES_SCHEMA)

    def _event_frame_rows(
        self, items: list[dict[str, Any]], parent: str | None, depth: int, db: str
    ) -> pl.DataFrame:
        rows: dict[str, list[Any]] = {k: [] for k in EVENT_FRAMES_SCHEMA}
        starts: list[str | None] = []
        ends: list[str | None] = []
        for f in items:
            links = f.get("Links") or {}
            end = f.get("EndTime")
            open_end = not end or str(end).startswith(str(_OPEN_END_YEAR))
            rows["web_id"].append(f.get("WebId"))
            rows["id"].append(str(f.get("Id", "")))
            rows["name"].append(f.get("Name"))
            rows["description"].append(f.get("Description"))
            rows["path"].append(f.get("Path"))
            rows["template"].append(f.get("TemplateName") or None)
            starts.append(f.get("StartTime"))
            ends.append(None if open_end else end)
            rows["in_progress"].append(open_end)
            rows["severity"].append(f.get("Severity"))
            rows["categories"].append(list(f.get("CategoryNames") or []))
            refs = list(f.get("RefElementWebIds") or [])
            rows["ref_element_web_ids"].append(refs)
            primary = _last_segment(links.get("PrimaryReferencedElement"))
            rows["primary_ref_element_web_id"].append(primary or (refs[0] if refs else None))
            rows["parent_web_id"].append(parent)
            rows["depth"].append(depth)
            rows["database"].append(db)
        del rows["start"], rows["end"]
        frame = pl.DataFrame(
            rows, schema={k: v for k, v in EVENT_FRAMES_SCHEMA.items() if k not in ("start", "end")}
        )
        return frame.with_columns(
            parse_timestamps(pl.Series(starts, dtype=pl.Utf8)).alias("start"),
            parse_timestamps(pl.Series(ends, dtype=pl.Utf8)).alias("end"),
        ).select(list(EVENT_FRAMES_SCHEMA))

    def iter_event_frames(
        self,
        database: AssetDatabase | str,
        start: TimeLike,
        end: TimeLike,
        *,
        search_mode: str = "Overlapped",
        children: bool = True,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[pl.DataFrame]:
        """Event frames overlapping [start, end] (EVENT_FRAMES_SCHEMA), paged; then child frames, breadth-first.

        In-progress frames (AF's 9999-12-31 open end) have end = null and in_progress = true.
        """
        db_web_id = self._server_web_id(database)
        db_name = database.path if isinstance(database, AssetDatabase) else db_web_id
        t0, t1 = (to_pi(t) for t in self._times(start, end))
        params = [("startTime", t0), ("endTime", t1), ("searchMode", search_mode)]
        parents: list[str] = []
        for items in self.iter_collection(
            f"assetdatabases/{db_web_id}/eventframes", params, page_size=page_size
        ):
            yield self._event_frame_rows(items, None, 0, db_name)
            parents += [f["WebId"] for f in items if f.get("HasChildren", True)]
        depth = 1
        while children and parents:
            next_parents: list[str] = []
            todo = [(p, 0) for p in parents]
            while todo:
                # Children of a frame lie within it; the wide window keeps the server's '*-8h' default out.
                urls = {
                    str(i): self.url(
                        f"eventframes/{p}/eventframes",
                        [
                            ("startTime", "1970-01-01T00:00:00Z"),
                            ("endTime", "9999-12-31T00:00:00Z"),
                            ("searchMode", "Overlapped"),
                            ("startIndex", str(s)),
                            ("maxCount", str(page_size)),
                        ],
                    )
                    for i, (p, s) in enumerate(todo)
                }
                contents, _ = self.batch_get(urls, web_ids={str(i): p for i, (p, _s) in enumerate(todo)})
                more = []
                frames = []
                for i, (parent, s) in enumerate(todo):
                    items = (contents.get(str(i)) or {}).get("Items") or []
                    if items:
                        frames.append(self._event_frame_rows(items, parent, depth, db_name))
                    next_parents += [f["WebId"] for f in items if f.get("HasChildren", True)]
                    if len(items) >= page_size:
                        more.append((parent, s + len(items)))
                if frames:
                    yield pl.concat(frames)
                todo = more
            parents = next_parents
            depth += 1

    def iter_event_frame_attributes(
        self, ef_web_ids: Iterable[str], *, chunk: int = 200
    ) -> Iterator[pl.DataFrame]:
        """Attributes of event frames with their captured values (EF_ATTRIBUTES_SCHEMA), batched.

        Per chunk of frames (chunks run in parallel on the client's pool), one POST /batch: a sub-request per frame lists its attributes, and a RequestTemplate
        sub-request per frame reads `attributes/{webId}/value` for every listed attribute (ParentIds + the JSONPath
        `$.L<i>.Content.Items[*].WebId`). An event frame's time context is its end, so PI answers the captured
        value; static attributes answer their value. A frame or value answering 404 is absent (no rows / null
        value); any other failure raises naming the sub-request and web id (see batch.list_and_fan_out).
        """
        ids = list(ef_web_ids)

        def one(part: list[str]) -> pl.DataFrame:
            listed = batch_mod.list_and_fan_out(
                self.session,
                {f: self.url(f"eventframes/{f}/attributes") for f in part},
                self.url("attributes/{0}/value"),
                web_ids={f: f for f in part},
                page_size=PAGE_SIZE,
            )
            rows: dict[str, list[Any]] = {k: [] for k in EF_ATTRIBUTES_SCHEMA if k != "timestamp"}
            stamps: list[str | None] = []
            entries = [(frame_id, entry) for frame_id in part for entry in listed.get(frame_id, [])]
            for _, entry in entries:
                if entry.content is not None:
                    _require_timed_value(entry.content, entry.item)
            # All captured values of the chunk decoded together: one columnar pass, not one frame per value.
            present = [entry.content for _, entry in entries if entry.content]
            decoded_values = iter(decode_timed_values(present))
            for frame_id, entry in entries:
                a, value = entry.item, entry.content
                decoded = next(decoded_values) if value else {}
                rows["event_frame_web_id"].append(frame_id)
                rows["web_id"].append(a.get("WebId"))
                rows["name"].append(a.get("Name"))
                rows["path"].append(a.get("Path"))
                rows["type"].append(a.get("Type"))
                rows["units"].append(a.get("DefaultUnitsNameAbbreviation") or None)
                rows["data_reference"].append(a.get("DataReferencePlugIn") or None)
                rows["config_string"].append(a.get("ConfigString") or None)
                stamps.append(value.get("Timestamp") if value else None)
                for k in ("value", "value_text", "digital_code", "is_system", "good"):
                    rows[k].append(decoded.get(k))
            frame = pl.DataFrame(
                rows, schema={k: v for k, v in EF_ATTRIBUTES_SCHEMA.items() if k != "timestamp"}
            )
            return frame.with_columns(parse_timestamps(pl.Series(stamps, dtype=pl.Utf8))).select(
                list(EF_ATTRIBUTES_SCHEMA)
            )

        # Chunks are independent: fetched and decoded on the pool, yielded in order.
        yield from self.session.map_ordered(one, [ids[k : k + chunk] for k in range(0, len(ids), chunk)])

    # -- time series: planning -----------------------------------------------------------------------------------
    def _url_groups(
        self, web_ids: Sequence[str], fixed_len: int = 300, max_per_group: int | None = None
    ) -> list[list[str]]:
        """Split web ids so each stream-set URL stays under max_url_bytes."""
        groups: list[list[str]] = []
        current: list[str] = []
        size = len(self.config.base_url) + fixed_len
        for w in web_ids:
            cost = len("&webId=") + len(quote(w, safe=""))
            if current and (size + cost > self.config.max_url_bytes or len(current) == max_per_group):
                groups.append(current)
                current, size = [], len(self.config.base_url) + fixed_len
            current.append(w)
            size += cost
        if current:
            groups.append(current)
        return groups

    def _windows(
        self, web_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Split [start, end] so the expected values per call (from observed densities) fit one call."""
        seconds = (end - start).total_seconds()
        with self._lock:
            expected = sum(self._density.get(w, 0.0) for w in web_ids) * seconds
        # 20 % headroom: density varies within a window; a miss costs one continuation, not correctness.
        n = max(1, math.ceil(expected * _HEADROOM / self._max_items))
        step = (end - start) / n
        return [(start + step * i, end if i == n - 1 else start + step * (i + 1)) for i in range(n)]

    def _learn(self, counts: dict[str, int], seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            for w, n in counts.items():
                self._density[w] = n / seconds

    def _note_limit(self, err: TooManyValuesError) -> None:
        limit = err.limit
        if limit:
            with self._lock:
                self._max_items = min(self._max_items, limit)

    def _drop_missing(self, web_ids: list[str], err: NotFoundError) -> list[str]:
        """A stream set answered 404: find the web ids the server does not know, record them, return the rest.

        PI fails the whole stream-set call for one unknown web id; one deleted tag must not block every other
        stream of a run. The group is re-asked singly in one POST /batch (`streams/{webId}/end`, the cheapest
        stream read); the ids answering 404 are skipped with a warning and recorded in `stats.missing_web_ids`
        for callers to surface. If no id is unknown the 404 was about something else and is raised.
        """
        if len(web_ids) == 1:
            reasons = {web_ids[0]: "; ".join(err.server_errors) or err.message}
        else:
            urls = {w: self.url(f"streams/{w}/end", [("selectedFields", "Timestamp")]) for w in web_ids}
            _, errors = self.batch_get(urls, web_ids={w: w for w in web_ids}, raise_errors=False)
            absent = batch_mod.absent_or_raise(errors)
            if not absent:
                raise err
            reasons = {w: "; ".join(errors[w].server_errors) or errors[w].message for w in absent}
        with self._lock:
            known = {w: p for p, w in self._point_web_ids.items() if w in reasons}
        for w, reason in reasons.items():
            self.stats.note_missing(w, reason)
            tag = f" ({known[w]})" if w in known else ""
            log.warning("skipping web id %s%s: PI Web API does not know it (404: %s)", w, tag, reason)
        return [w for w in web_ids if w not in reasons]

    def _not_missing(self, web_ids: list[str]) -> list[str]:
        """`web_ids` without those already found unknown (no second 404 and probe per window for a deleted tag)."""
        missing = self.stats.missing_web_ids
        if not missing or not any(w in missing for w in web_ids):
            return web_ids
        return [w for w in web_ids if w not in missing]

    def _raise_if_all_missing(self, web_ids: list[str], path: str) -> None:
        """Skipping is for one stale id among many; when the server knows none of a call's ids the caller's
        configuration is wrong (another server, ids from another system): an empty answer would hide that."""
        missing = self.stats.missing_web_ids
        if web_ids and all(w in missing for w in web_ids):
            shown = ", ".join(web_ids[:3]) + (f" and {len(web_ids) - 3} more" if len(web_ids) > 3 else "")
            raise NotFoundError(
                f"PI Web API returned 404 for GET {path}: it knows none of the requested web ids ({shown})",
                method="GET",
                path=path,
                status=404,
                web_id=web_ids[0],
                server_errors=[missing[web_ids[0]]],
            )

    # -- server clock ------------------------------------------------------------------------------------------
    def _times(self, *values: TimeLike) -> list[datetime]:
        """Times as typed by users → UTC datetimes; relative expressions ('*', '*-1h', 't') on the server's clock.

        `*` means the server's now (PI resolves it there too): a client whose clock is off, or a server in
        another era (a test system with a frozen clock), still reads the window the user meant. One
        GET /system/status per call at most, reused for `_SERVER_CLOCK_TTL_S`; datetimes and ISO times are kept.
        """
        relative = [v for v in values if isinstance(v, str) and _is_relative(v)]
        if not relative:
            return [parse_time(v) for v in values]
        now = self._server_now()
        return [parse_time(v, now) for v in values]

    def _server_now(self) -> datetime:
        with self._lock:
            cached = self._server_clock
        if cached is not None and time.monotonic() - cached[1] < _SERVER_CLOCK_TTL_S:
            return cached[0]
        now = self.server_time()
        with self._lock:
            self._server_clock = (now, time.monotonic())
        return now

    # -- time series: recorded -----------------------------------------------------------------------------------
    def iter_recorded(
        self,
        web_ids: Iterable[str],
        start: TimeLike,
        end: TimeLike,
        *,
        include_end: bool = False,
    ) -> Iterator[pl.DataFrame]:
        """Every recorded value of each stream in [start, end) — or [start, end] with include_end — as VALUES_SCHEMA.

        Complete: streams cut at maxCount are continued from their last timestamp, skipping the values already
        seen there; calls over MaxReturnedItemsPerCall are split. Half-open by default so adjacent windows never
        share a value. Frames come per (stream group, time window), in order, with bounded memory.
        """
        web_ids = list(dict.fromkeys(web_ids))
        units = self._recorded_units(web_ids, start, end, include_end)
        for frame in self.session.map_ordered(lambda u: self._recorded_window(*u), units):
            self.stats.add(values=len(frame))
            yield frame
        self._raise_if_all_missing(web_ids, "/streamsets/recorded")

    def plan_recorded(self, web_ids: Iterable[str], start: TimeLike, end: TimeLike) -> int:
        """How many frames (planned stream-set calls) iter_recorded would yield if called now with these arguments;
        for progress reporting ("pages done / total"). Continuations add calls, never frames."""
        return len(self._recorded_units(web_ids, start, end, False))

    def _recorded_units(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, include_end: bool
    ) -> list[tuple[list[str], datetime, datetime, bool]]:
        """(stream group, window start, window end, include_end) per planned call, in yield order."""
        ids = list(dict.fromkeys(web_ids))
        t0, t1 = self._times(start, end)
        if t1 < t0:
            raise ValueError(
                f"end {to_pi(t1)} is before start {to_pi(t0)}: recorded reads go forward in time."
            )
        units = []
        for group in self._url_groups(ids):
            windows = self._windows(group, t0, t1)
            for i, (ws, we) in enumerate(windows):
                last = i == len(windows) - 1
                units.append((group, ws, we, include_end and last))
        return units

    def recorded(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, *, include_end: bool = False
    ) -> pl.DataFrame:
        """All of iter_recorded in one frame."""
        frames = list(self.iter_recorded(web_ids, start, end, include_end=include_end))
        return pl.concat(frames) if frames else pl.DataFrame(schema=VALUES_SCHEMA)

    def _recorded_window(
        self, web_ids: list[str], start: datetime, end: datetime, include_end: bool
    ) -> pl.DataFrame:
        """One stream group over one window: a stream-set call, then batch continuations until complete."""
        web_ids = self._not_missing(web_ids)
        if not web_ids:
            return pl.DataFrame(schema=VALUES_SCHEMA)
        try:
            chunks, per_stream = self._streamset_recorded(web_ids, start, end)
        except NotFoundError as err:
            remaining = self._drop_missing(web_ids, err)
            if not remaining:
                return pl.DataFrame(schema=VALUES_SCHEMA)
            return self._recorded_window(remaining, start, end, include_end)
        except TooManyValuesError as err:
            self._note_limit(err)
            if len(web_ids) > 1:
                half = len(web_ids) // 2
                parts = [
                    self._recorded_window(web_ids[:half], start, end, include_end),
                    self._recorded_window(web_ids[half:], start, end, include_end),
                ]
            else:
                mid = start + (end - start) / 2
                if mid <= start:
                    raise
                parts = [
                    self._recorded_window(web_ids, start, mid, False),
                    self._recorded_window(web_ids, mid, end, include_end),
                ]
            return pl.concat(parts)
        # Each round is decoded as soon as it arrives: parsed JSON costs ~10x the memory of the columns, and
        # holding every round of a dense window as dicts made peak RSS grow with the window length. Ordinals are
        # computed per chunk (continuations carry their offset), so decoding per round gives the same values.
        # Decoding comes first: it rejects malformed values before the continuation logic reads their timestamps.
        with _reading("GET", "/streamsets/recorded"):
            frames = [values_frame(_by_stream(chunks, web_ids))]
        counts: dict[str, int] = {}
        pending: dict[str, _StreamState] = {}
        for c in chunks:
            counts[c.web_id] = len(c.items)
            if len(c.items) >= per_stream:
                pending[c.web_id] = self._state_after(c.web_id, c.items, 0, None)
        del chunks
        while pending:
            more_chunks, pending = self._continue(pending, end)
            for c in more_chunks:
                counts[c.web_id] = counts.get(c.web_id, 0) + len(c.items)
            with _reading("GET", "/streams/{webId}/recorded (in POST /batch)"):
                frames.append(values_frame(_by_stream(more_chunks, web_ids)))
        self._learn(counts, (end - start).total_seconds())
        frame = frames[0] if len(frames) == 1 else _stream_order(pl.concat(frames), web_ids)
        # boundaryType=Inside includes values stamped exactly at `end`: drop them (a copy only when there are any).
        if not include_end and len(frame) and frame["timestamp"].max() >= end:  # type: ignore[operator]
            frame = frame.filter(pl.col("timestamp") < end)
        return frame

    def _streamset_recorded(
        self, web_ids: list[str], start: datetime, end: datetime
    ) -> tuple[list[StreamChunk], int]:
        # maxCount per stream. With every stream's density known and the expected total within
        # MaxReturnedItemsPerCall, ask for everything (one call). Otherwise split the budget evenly so the call can
        # never exceed the limit (no 400); streams that hit their share are continued individually.
        with self._lock:
            densities = [self._density.get(w) for w in web_ids]
        seconds = (end - start).total_seconds()
        if all(d is not None for d in densities) and sum(densities) * seconds * _HEADROOM <= self._max_items:  # type: ignore[misc]
            per_stream = self._max_items
        else:
            per_stream = max(1, self._max_items // len(web_ids))
        params = [("webId", w) for w in web_ids] + [
            ("startTime", to_pi(start)),
            ("endTime", to_pi(end)),
            ("boundaryType", "Inside"),
            ("maxCount", str(per_stream)),
            ("selectedFields", SET_FIELDS),
        ]
        body = self.get("streamsets/recorded", params, web_id=web_ids[0] if len(web_ids) == 1 else None)
        with _reading("GET", "/streamsets/recorded", web_ids[0] if len(web_ids) == 1 else None):
            chunks = streamset_chunks(body, "recorded values")
            got = {c.web_id for c in chunks}
            lost = [w for w in web_ids if w not in got]
            if lost:
                # A stream left out of a 200 answer would silently read as "no values in this window".
                raise malformed(f"no item for {len(lost)} requested stream(s), first {lost[0]}", None)
        return chunks, per_stream

    @staticmethod
    def _state_after(
        web_id: str, items: list[dict[str, Any]], skipped: int, prev: _StreamState | None
    ) -> _StreamState:
        """Continuation point: the last timestamp and how many values at it have been delivered (k)."""
        last_ts = items[-1]["Timestamp"] if items else (prev.last_ts if prev else "")
        k = 0
        for v in reversed(items):
            if v["Timestamp"] != last_ts:
                break
            k += 1
        if prev is not None and prev.last_ts == last_ts and len(items) == k:
            # Every returned value sat at the previous last timestamp: add to what was delivered before.
            k += prev.seen_at_last
        return _StreamState(web_id, last_ts, k)

    def _continue(
        self, pending: dict[str, _StreamState], end: datetime
    ) -> tuple[list[StreamChunk], dict[str, _StreamState]]:
        """One round of continuations for truncated streams, all in one POST /batch (different start per stream)."""
        n = len(pending)
        per_stream = max(1000, self._max_items // n)
        per_stream = min(per_stream, self._max_items)
        max_counts = {}
        urls = {}
        for w, st in pending.items():
            # A run of equal timestamps longer than maxCount would never advance: ask for enough to pass it.
            m = min(self._max_items, max(per_stream, st.seen_at_last + per_stream))
            max_counts[w] = m
            urls[w] = self.url(
                f"streams/{w}/recorded",
                [
                    ("startTime", st.last_ts),
                    ("endTime", to_pi(end)),
                    ("boundaryType", "Inside"),
                    ("maxCount", str(m)),
                    ("selectedFields", STREAM_FIELDS),
                ],
            )
        try:
            contents, _ = self.batch_get(urls, web_ids={w: w for w in urls})
        except TooManyValuesError as err:
            before = self._max_items
            self._note_limit(err)
            if self._max_items >= before:
                raise  # the limit did not go down: retrying the same round would loop forever
            return [], pending
        chunks: list[StreamChunk] = []
        still: dict[str, _StreamState] = {}
        for w, st in pending.items():
            body = contents.get(w)
            items = _continued_items(body, w)
            # Skip the k values already delivered at the last timestamp (they come first, in archive order).
            skip = 0
            while skip < len(items) and skip < st.seen_at_last and items[skip]["Timestamp"] == st.last_ts:
                skip += 1
            if skip < st.seen_at_last and len(items) < max_counts[w]:
                # Fewer values at that timestamp than before: the archive changed under us (an edit). Re-reading
                # cannot make the result consistent, so say so instead of returning a silently different answer.
                raise PIWebAPIError(
                    f"recorded values of stream {w} changed while reading (fewer values at {st.last_ts})",
                    web_id=w,
                    advice="the archive was edited during the read; re-run the window",
                )
            fresh = items[skip:]
            offset = st.seen_at_last if fresh and fresh[0]["Timestamp"] == st.last_ts else 0
            if fresh:
                chunks.append(StreamChunk(w, fresh, body.get("UnitsAbbreviation"), ordinal_offset=offset))
            if len(items) >= max_counts[w]:
                still[w] = self._state_after(w, fresh, skip, st)
        return chunks, still

    # -- time series: other retrievals ---------------------------------------------------------------------------
    def _streamset_frames(
        self,
        endpoint: str,
        web_ids: Sequence[str],
        params: list[tuple[str, str]],
        per_stream_items: int,
        decode: Callable[[Any], pl.DataFrame],
    ) -> pl.DataFrame:
        """GET streamsets/<endpoint> for groups small enough for the URL limit and MaxReturnedItemsPerCall."""
        ids = list(dict.fromkeys(web_ids))
        max_group = max(1, self._max_items // max(1, per_stream_items))
        groups = self._url_groups(ids, max_per_group=max_group)

        def fetch(group: list[str]) -> pl.DataFrame:
            group = self._not_missing(group)
            if not group:
                return decode({})
            try:
                body = self.get(f"streamsets/{endpoint}", [("webId", w) for w in group] + params)
            except NotFoundError as err:
                remaining = self._drop_missing(group, err)
                return fetch(remaining) if remaining else decode({})
            with _reading("GET", f"/streamsets/{endpoint}", group[0] if len(group) == 1 else None):
                return decode(body)

        frames = list(self.session.map_ordered(fetch, groups))
        self._raise_if_all_missing(ids, f"/streamsets/{endpoint}")
        return pl.concat(frames) if frames else decode({})

    def interpolated(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, interval: str | timedelta
    ) -> pl.DataFrame:
        """Interpolated values every `interval` from start to end inclusive (VALUES_SCHEMA, ordinal 0)."""
        t0, t1 = self._times(start, end)
        step = parse_interval(interval)
        if step.total_seconds() <= 0:
            raise ValueError(f"interval {interval!r} must be positive.")
        n = int((t1 - t0) / step) + 1
        # A single stream over more intervals than one call may return: split on interval boundaries.
        per_call = max(1, self._max_items - 1)
        frames = []
        piece_start = t0
        while piece_start <= t1:
            piece_end = min(t1, piece_start + step * (min(n, per_call) - 1))
            frame = self._streamset_frames(
                "interpolated",
                list(web_ids),
                [
                    ("startTime", to_pi(piece_start)),
                    ("endTime", to_pi(piece_end)),
                    ("interval", format_span(step)),
                ],
                int((piece_end - piece_start) / step) + 1,
                lambda b: decode_streamset(b, "interpolated values"),
            )
            frames.append(frame)
            piece_start = piece_end + step
        out = pl.concat(frames)
        self.stats.add(values=len(out))
        return out

    def plot(
        self, web_ids: Iterable[str], start: TimeLike, end: TimeLike, intervals: int = 24
    ) -> pl.DataFrame:
        """Plot values (first/last/min/max/exceptions per interval, at most 5 per interval) as VALUES_SCHEMA."""
        t0, t1 = self._times(start, end)
        if intervals * 5 > self._max_items:
            raise ValueError(
                f"intervals={intervals} could exceed {self._max_items} values per stream: use fewer."
            )
        out = self._streamset_frames(
            "plot",
            list(web_ids),
            [("startTime", to_pi(t0)), ("endTime", to_pi(t1)), ("intervals", str(intervals))],
            5 * intervals,
            lambda b: decode_streamset(b, "plot values"),
        )
        self.stats.add(values=len(out))
        return out

    def summary(
        self,
        web_ids: Iterable[str],
        start: TimeLike,
        end: TimeLike,
        summary_types: Sequence[str] = ("Average",),
        summary_duration: str | timedelta | None = None,
        *,
        calculation_basis: str = "TimeWeighted",
    ) -> pl.DataFrame:
        """Summaries (SUMMARY_SCHEMA) per stream and type, over the whole range or per `summary_duration`.

        `calculation_basis` decides which boundary events an event-weighted interval holds: plain EventWeighted
        holds both ends of a single interval and the start of each of several; HALF_OPEN_BASIS holds [start, end)
        of every interval, which is what a comparison with a half-open `recorded` read needs.
        """
        t0, t1 = self._times(start, end)
        params = [("startTime", to_pi(t0)), ("endTime", to_pi(t1)), ("calculationBasis", calculation_basis)]
        params += [("summaryType", t) for t in summary_types]
        intervals = 1
        if summary_duration is not None:
            span = parse_interval(summary_duration)
            params.append(("summaryDuration", format_span(span)))
            intervals = max(1, math.ceil((t1 - t0) / span))
        out = self._streamset_frames(
            "summary", list(web_ids), params, intervals * len(summary_types), decode_summary
        )
        return out if len(out) else pl.DataFrame(schema=SUMMARY_SCHEMA)

    def recorded_counts(self, web_ids: Iterable[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """PI's summary Count per stream over [start, end), COUNTS_SCHEMA, batched by stream set.

        Asked with HALF_OPEN_BASIS (EventWeightedExcludeMostRecentEvent): one EventWeighted interval would also
        count a value stamped exactly at `end`, which a half-open read leaves to the next window. PI counts *good*
        values only: compare with the rows of a half-open `recorded` read whose `good` is true and `is_system`
        false. Streams the server reports no count for get 0; every requested web id has a row.
        """
        ids = list(dict.fromkeys(web_ids))
        s = self.summary(ids, start, end, ("Count",), calculation_basis=HALF_OPEN_BASIS)
        counts = (
            s.filter(pl.col("summary_type") == "Count")
            .group_by("web_id")
            .agg(pl.col("value").sum().round(0).cast(pl.Int64).alias("count"))
        )
        base = pl.DataFrame({"web_id": ids}, schema={"web_id": pl.Utf8})
        return (
            base.join(counts, on="web_id", how="left")
            .with_columns(pl.col("count").fill_null(0))
            .select(list(COUNTS_SCHEMA))
        )

    def end_values(self, web_ids: Iterable[str]) -> pl.DataFrame:
        """The last recorded value of each stream (GET streamsets/end), VALUES_SCHEMA."""
        return self._streamset_frames("end", list(web_ids), [], 1, decode_end_values)

    def channel(self, web_ids: Iterable[str], **options: Any) -> ChannelStream:
        """A WebSocket channel on `web_ids` (iterate it, sync or async) on this client's connection (TLS, auth and its
        token cache, retry policy); gaps after reconnects are back-filled from this client's recorded reads."""
        return ChannelStream(self.session.connection, web_ids, backfill=self, **options)

    def current_values(self, web_ids: Iterable[str], time: TimeLike | None = None) -> pl.DataFrame:
        """Snapshot values (GET streamsets/value), or values at `time`, VALUES_SCHEMA."""
        params = [] if time is None else [("time", to_pi(self._times(time)[0]))]
        return self._streamset_frames("value", list(web_ids), params, 1, decode_end_values)


def _stream_order(frame: pl.DataFrame, order: Sequence[str]) -> pl.DataFrame:
    """Rows grouped by stream in request order, each stream's rows in read order (a stable sort by stream rank)."""
    rank = pl.Series("web_id", list(order), dtype=pl.Utf8)
    keys = frame["web_id"].replace_strict(rank, pl.int_range(len(rank), eager=True), default=len(rank))
    return frame.sort(keys, maintain_order=True)


def _by_stream(chunks: list[StreamChunk], order: Sequence[str]) -> list[StreamChunk]:
    """Chunks grouped by stream (in request order), each stream's chunks in read order, for ordinal runs."""
    rank = {w: i for i, w in enumerate(order)}
    return sorted(chunks, key=lambda c: rank.get(c.web_id, len(rank)))
