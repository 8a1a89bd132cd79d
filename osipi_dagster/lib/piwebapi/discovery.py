"""Discovery: data servers and PI points, AF servers, databases, elements and attributes, event frames and their
captured attribute values, each as polars frames (schemas in `schema.py`), bulk levels through POST /batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from osipi_dagster.lib.piwebapi import batch as batch_mod
from osipi_dagster.lib.piwebapi.base import PAGE_SIZE, ClientBase
from osipi_dagster.lib.piwebapi.decode import check_errors, decode_timed_values, parse_timestamps
from osipi_dagster.lib.piwebapi.errors import PIWebAPIError, ResponseError
from osipi_dagster.lib.piwebapi.models import AssetDatabase, AssetServer, DataServer
from osipi_dagster.lib.piwebapi.pitime import TimeLike, to_pi
from osipi_dagster.lib.piwebapi.schema import (
    ATTRIBUTES_SCHEMA,
    EF_ATTRIBUTES_SCHEMA,
    ELEMENTS_SCHEMA,
    EVENT_FRAMES_SCHEMA,
    POINTS_SCHEMA,
)

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


class DiscoveryMixin(ClientBase):
    """What exists on the server: data servers, points, the AF hierarchy, event frames."""

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
