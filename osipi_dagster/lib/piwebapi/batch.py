"""POST /batch in PI Web API's real format: id → {Method, Resource, Parameters, ParentIds, RequestTemplate, Content}.

Answers are 207 Multi-Status dictionaries of id → {Status, Headers, Content} (a RequestTemplate's Content is
{Total, Items: [{Status, Headers, Content}, …]}); transient failures are retried, and after retries only a 404 may
mean "absent": every other failure is raised naming the sub-request, never turned into a silent null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from osipi_dagster.lib.piwebapi.errors import (
    NotFoundError,
    PIWebAPIError,
    ResponseError,
    server_messages,
)
from osipi_dagster.lib.piwebapi.http import HTTPSession, check_web_exception
from osipi_dagster.lib.retry import Attempts, retryable_status

# Status we give a sub-request the server did not answer at all (no entry for its id in the 207 body).
NO_ANSWER = 0


@dataclass(frozen=True)
class BatchItemResult:
    """One sub-response: HTTP status and parsed content (dict, list, string or None).

    For a RequestTemplate sub-request `items` holds the fan-out's own answers in parameter order (the outer
    `content` is then PI's {"Total": N, "Items": [...]}); a template that could not run at all has `items = None`.
    """

    id: str
    status: int
    content: Any
    items: tuple[BatchItemResult, ...] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Worth sending again: a 5xx/429/408, no answer, or a 2xx whose body carries a WebException."""
        if retryable_status(self.status) or self.status == NO_ANSWER:
            return True
        web_exc = self.content.get("WebException") if isinstance(self.content, dict) else None
        return self.ok and self.items is None and bool(web_exc)


def get_request(url: str) -> dict[str, Any]:
    """A batch GET sub-request for an absolute URL."""
    return {"Method": "GET", "Resource": url}


def template_request(resource: str, parameters: Sequence[str], parent_ids: Sequence[str]) -> dict[str, Any]:
    """A GET fanned out by PI: one call of `resource` ('…{0}…') per token the JSONPath `parameters` select."""
    return {
        "Method": "GET",
        "RequestTemplate": {"Resource": resource},
        "Parameters": list(parameters),
        "ParentIds": list(parent_ids),
    }


def _item(key: str, raw: Any) -> BatchItemResult:
    if not isinstance(raw, dict):
        return BatchItemResult(key, NO_ANSWER, "the batch response has no entry for this request")
    try:
        status = int(raw.get("Status", NO_ANSWER))
    except (TypeError, ValueError):
        status = NO_ANSWER
    return BatchItemResult(key, status, raw.get("Content"))


def execute(session: HTTPSession, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, BatchItemResult]:
    """One POST /batch; per-id results (a 207 whose items carry their own statuses, templates split per item)."""
    body = session.request("POST", "batch", json_body=dict(requests))
    if not isinstance(body, dict):
        raise ResponseError(
            "PI Web API answered POST /batch without a JSON object",
            method="POST",
            path="/batch",
            advice="check that the server supports the batch controller (PI Web API 2015+)",
        )
    results: dict[str, BatchItemResult] = {}
    for key, spec in requests.items():
        result = _item(key, body.get(key))
        content = result.content
        if "RequestTemplate" in spec and isinstance(content, dict) and isinstance(content.get("Items"), list):
            # The fan-out answered (200 if every item did, 207 otherwise): each item has its own status.
            items = tuple(_item(f"{key}[{i}]", raw) for i, raw in enumerate(content["Items"]))
            result = BatchItemResult(key, result.status, content, items)
        results[key] = result
    return results


def _dependants(requests: Mapping[str, Mapping[str, Any]], keys: Iterable[str]) -> set[str]:
    """`keys` plus every request that (transitively) names one of them in ParentIds."""
    out = set(keys)
    grew = True
    while grew:
        grew = False
        for key, spec in requests.items():
            if key not in out and out.intersection(str(p) for p in spec.get("ParentIds") or ()):
                out.add(key)
                grew = True
    return out


def _resends(session: HTTPSession, retries: int | None = None) -> Attempts:
    """Re-sends of failed sub-requests: the session's policy (its sleep and backoff) with its retry count (or
    `retries`) and no deadline of its own (each POST /batch has the session's per-request deadline)."""
    limit = session.config.max_retries if retries is None else retries
    return replace(session.retry, max_retries=max(0, limit), deadline_s=None).attempts()


def execute_all(
    session: HTTPSession, requests: Mapping[str, Mapping[str, Any]]
) -> dict[str, BatchItemResult]:
    """`execute` with the retry policy: top-level sub-requests that failed transiently are re-sent (with every
    request depending on them through ParentIds) within the session's retry limit; the rest is returned as is.

    A template whose fan-out partly failed is not re-sent here: its items' URLs are only known to the caller.
    """
    results: dict[str, BatchItemResult] = {}
    pending = dict(requests)
    attempts = _resends(session)
    while pending:
        got = execute(session, pending)
        results.update(got)
        failed = [k for k, r in got.items() if r.transient]
        delay = attempts.next_delay() if failed else None
        if delay is None:
            break
        again = _dependants(pending, failed)
        pending = {k: requests[k] for k in pending if k in again}
        session.stats.add(retries=len(pending))
        attempts.wait(delay)
    return results


def item_error(result: BatchItemResult, method: str, path: str, web_id: str | None) -> PIWebAPIError:
    """The error for a failed sub-request (status, server messages, or the WebException it carried)."""
    where = path + " (in POST /batch)"
    if result.ok:
        try:
            check_web_exception(result.content, method, where, web_id)
        except Exception as exc:  # _Retryable wraps the ResponseError for a WebException
            return getattr(exc, "error", ResponseError(str(exc), method=method, path=where, web_id=web_id))
    if result.status == NO_ANSWER:
        return ResponseError(
            f"PI Web API gave no answer for {method} {where}" + (f" (web id {web_id})" if web_id else ""),
            method=method,
            path=where,
            web_id=web_id,
            advice="the batch response is incomplete; retry, and check PI Web API's logs",
        )
    return PIWebAPIError.for_status(
        result.status, method, where, web_id=web_id, server_errors=server_messages(result.content)
    )


def get_many(
    session: HTTPSession,
    urls: Mapping[str, str],
    *,
    web_ids: Mapping[str, str] | None = None,
    raise_errors: bool = True,
    retries: int | None = None,
) -> tuple[dict[str, Any], dict[str, PIWebAPIError]]:
    """GET many URLs in one batch (more if sub-requests must be retried); returns (contents, errors) by id.

    Transient sub-failures (5xx, 429, a WebException in the content) are retried in a smaller batch with backoff,
    within the session's retry limit (or `retries`). Other failures become `PIWebAPIError`s naming the sub-request; with
    raise_errors the first one is raised after every other id completed.
    """
    contents: dict[str, Any] = {}
    errors: dict[str, PIWebAPIError] = {}
    pending = dict(urls)
    attempts = _resends(session, retries)
    while pending:
        results = execute(session, {k: get_request(u) for k, u in pending.items()})
        transient = [k for k, r in results.items() if r.transient]
        delay = attempts.next_delay() if transient else None
        retry: dict[str, str] = {}
        for key, result in results.items():
            url = pending[key]
            if result.ok and not result.transient:
                contents[key] = result.content
            elif result.transient and delay is not None:
                retry[key] = url
            else:
                errors[key] = item_error(result, "GET", session.display_path(url), (web_ids or {}).get(key))
        pending = retry
        if pending:
            session.stats.add(retries=len(pending))
            attempts.wait(delay or 0.0)
    if errors and raise_errors:
        raise next(iter(errors.values()))
    return contents, errors


def absent_or_raise(errors: Mapping[str, PIWebAPIError], what: Mapping[str, str] | None = None) -> set[str]:
    """The ids whose failure was a 404 (the object does not exist: callers may record it as absent).

    Any other failure (5xx or 429 after retries, WebException, unreadable content) raises: a value that could
    not be read must never look like a value that does not exist. `what` adds a description per id to the error
    (e.g. the PI point path behind a `points?path=` request, which the URL path alone does not show).
    """
    absent: set[str] = set()
    for key, err in errors.items():
        if isinstance(err, NotFoundError):
            absent.add(key)
            continue
        detail = (what or {}).get(key)
        if detail:
            raise err.reworded(f"{err.message} for {detail}")
        raise err
    return absent


@dataclass(frozen=True)
class Listed:
    """One object of a parent's listing and the answer of the fan-out sub-request made for it."""

    item: dict[str, Any]
    content: Any  # None when the fan-out answered 404 (the object has no such resource)


def list_and_fan_out(
    session: HTTPSession,
    lists: Mapping[str, str],
    resource: str,
    *,
    field: str = "WebId",
    web_ids: Mapping[str, str] | None = None,
    page_size: int = 1000,
) -> dict[str, list[Listed]]:
    """For each key: list a collection (`lists[key]`, paged) and GET `resource` ('…{0}…') for every listed item,
    the item's `field` substituted — both in the same POST /batch (ParentIds + RequestTemplate), so N parents
    with M children cost one call instead of 1 + N + N·M.

    Listing failures: 404 → the parent is absent (no items); others raise after retries. Fan-out items that
    failed transiently are re-read individually (with retries); then 404 → content None, anything else raises
    naming the sub-request and the item's web id. Returns key → [Listed] in listing order.
    """
    out: dict[str, list[Listed]] = {k: [] for k in lists}
    todo = [(key, 0) for key in lists]
    per_call = max(1, session.config.batch_size // 2)
    while todo:
        more: list[tuple[str, int]] = []
        for part_start in range(0, len(todo), per_call):
            part = todo[part_start : part_start + per_call]
            more += _list_round(session, part, lists, resource, field, web_ids or {}, page_size, out)
        todo = more
    return out


def _paged(url: str, start: int, page_size: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}startIndex={start}&maxCount={page_size}"


def _list_round(
    session: HTTPSession,
    part: list[tuple[str, int]],
    lists: Mapping[str, str],
    resource: str,
    field: str,
    web_ids: Mapping[str, str],
    page_size: int,
    out: dict[str, list[Listed]],
) -> list[tuple[str, int]]:
    """One batch for a set of (key, startIndex) pages; appends to `out`, returns the pages still to read."""
    requests: dict[str, dict[str, Any]] = {}
    for i, (key, start) in enumerate(part):
        requests[f"L{i}"] = get_request(_paged(lists[key], start, page_size))
        requests[f"V{i}"] = template_request(resource, [f"$.L{i}.Content.Items[*].{field}"], [f"L{i}"])
    results = execute_all(session, requests)
    more: list[tuple[str, int]] = []
    retry_urls: dict[str, str] = {}
    retry_ids: dict[str, str] = {}
    # Where each retried fan-out answer lands in out[key] (a key has at most one page per round).
    slots: dict[str, tuple[str, int]] = {}
    for i, (key, start) in enumerate(part):
        listed = results[f"L{i}"]
        list_path = session.display_path(lists[key])
        if not listed.ok or listed.transient:
            err = item_error(listed, "GET", list_path, web_ids.get(key))
            if isinstance(err, NotFoundError):
                continue
            raise err
        items = listed.content.get("Items") if isinstance(listed.content, dict) else None
        if not isinstance(items, list) or not all(isinstance(x, dict) and x.get(field) for x in items):
            raise ResponseError(
                f"PI Web API answered GET {list_path} (in POST /batch) without a list of Items each with {field}",
                method="GET",
                path=list_path + " (in POST /batch)",
                web_id=web_ids.get(key),
                advice="the listing is malformed; check PI Web API's version and logs",
            )
        if len(items) >= page_size:
            more.append((key, start + len(items)))
        if not items:
            continue  # nothing to fan out over: PI answers the template with a 400 "selected no value"
        fan = results[f"V{i}"]
        if fan.items is None or len(fan.items) != len(items):
            got = "no items" if fan.items is None else f"{len(fan.items)} answers for {len(items)} items"
            err = item_error(fan, "GET", session.display_path(resource), web_ids.get(key))
            if fan.ok:
                err = ResponseError(
                    f"PI Web API answered the RequestTemplate {resource} (in POST /batch) with {got}",
                    method="GET",
                    path=session.display_path(resource) + " (in POST /batch)",
                    web_id=web_ids.get(key),
                    advice="the batch fan-out is malformed; check PI Web API's version and logs",
                )
            raise err
        contents: list[Any] = []
        for j, (obj, answer) in enumerate(zip(items, fan.items, strict=True)):
            token = str(obj[field])
            if answer.ok and not answer.transient:
                contents.append(answer.content)
                continue
            rid = f"{key}[{start + j}]"
            if answer.transient and session.config.max_retries > 0:
                slots[rid] = (key, len(out[key]) + j)
                retry_urls[rid] = resource.replace("{0}", token)
                retry_ids[rid] = token
                contents.append(None)
                continue
            err = item_error(answer, "GET", session.display_path(resource.replace("{0}", token)), token)
            if not isinstance(err, NotFoundError):
                raise err
            contents.append(None)
        out[key].extend(Listed(obj, c) for obj, c in zip(items, contents, strict=True))
    if retry_urls:
        # Transient fan-out failures: the concrete URLs are known now, so re-read them with get_many's retries.
        # The template was the first attempt: max_retries - 1 retries remain after this re-read.
        got, errors = get_many(
            session,
            retry_urls,
            web_ids=retry_ids,
            raise_errors=False,
            retries=session.config.max_retries - 1,
        )
        absent_or_raise(errors)
        for rid, content in got.items():
            key, index = slots[rid]
            out[key][index] = Listed(out[key][index].item, content)
    return more
