"""`ClientBase`: the state every part of `PIWebAPIClient` shares and the plumbing they all request through.

State: the HTTP session, the point web-id cache, observed stream densities, the server's item limit and the server
clock. Plumbing: GET, absolute URLs, paged collections, POST /batch, stream-set calls grouped under the URL limit,
and the handling of web ids the server does not know. Relative times ('*-1h') resolve on the server's clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import polars as pl

from osipi_dagster.lib.piwebapi import batch as batch_mod
from osipi_dagster.lib.piwebapi.config import ClientConfig
from osipi_dagster.lib.piwebapi.errors import (
    NotFoundError,
    PIWebAPIError,
    ResponseError,
    TooManyValuesError,
)
from osipi_dagster.lib.piwebapi.http import ClientStats, HTTPSession
from osipi_dagster.lib.piwebapi.pitime import TimeLike, parse_time

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
# How long one read of the server's clock anchors relative times ('*-1h') for following calls.
_SERVER_CLOCK_TTL_S = 1.0
# Two anchors far apart: an expression that parses the same on both does not depend on "now".
_ANCHORS = (datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2017, 11, 29, 22, 33, 44, tzinfo=UTC))


@lru_cache(maxsize=1 << 17)
def _id_param_len(web_id: str) -> int:
    """Bytes `&webId=<id>` adds to a URL. Cached: a run plans the same tens of thousands of ids several times."""
    return len("&webId=") + len(quote(web_id, safe=""))


def _is_relative(text: str) -> bool:
    """True for PI time expressions anchored on now ('*', '*-1h', 't', 'monday', '15'); False for ISO times."""
    return parse_time(text, _ANCHORS[0]) != parse_time(text, _ANCHORS[1])


@contextmanager
def reading(method: str, path: str, web_id: str | None = None) -> Iterator[None]:
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


class ClientBase:
    """One per PI Web API: a pooled HTTP session, caches (web ids, densities), the item limit and the server clock."""

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

    # -- time series: planning -----------------------------------------------------------------------------------
    def _url_groups(
        self, web_ids: Sequence[str], fixed_len: int = 300, max_per_group: int | None = None
    ) -> list[list[str]]:
        """Split web ids so each stream-set URL stays under max_url_bytes."""
        groups: list[list[str]] = []
        current: list[str] = []
        size = len(self.config.base_url) + fixed_len
        for w in web_ids:
            cost = _id_param_len(w)
            if current and (size + cost > self.config.max_url_bytes or len(current) == max_per_group):
                groups.append(current)
                current, size = [], len(self.config.base_url) + fixed_len
            current.append(w)
            size += cost
        if current:
            groups.append(current)
        return groups

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

    # -- stream sets -------------------------------------------------------------------------------------------
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
            with reading("GET", f"/streamsets/{endpoint}", group[0] if len(group) == 1 else None):
                return decode(body)

        frames = list(self.session.map_ordered(fetch, groups))
        self._raise_if_all_missing(ids, f"/streamsets/{endpoint}")
        return pl.concat(frames) if frames else decode({})
