"""POST /batch in PI Web API's real format: id → {Method, Resource, Parameters, ParentIds, RequestTemplate, Content}.

Answers are 207 Multi-Status dictionaries of id → {Status, Headers, Content}; failed sub-requests are retried
(5xx/429) or reported per id, never silently dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osipi_dagster.lib.piwebapi.errors import PIWebAPIError, server_messages
from osipi_dagster.lib.piwebapi.http import HTTPSession, check_web_exception

_RETRY_ITEM = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BatchItemResult:
    """One sub-response: HTTP status and parsed content (dict, list, string or None)."""

    id: str
    status: int
    content: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def get_request(url: str) -> dict[str, Any]:
    """A batch GET sub-request for an absolute URL."""
    return {"Method": "GET", "Resource": url}


def execute(session: HTTPSession, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, BatchItemResult]:
    """One POST /batch; per-id results (a 207 whose items carry their own statuses)."""
    body = session.request("POST", "batch", json_body=dict(requests))
    if not isinstance(body, dict):
        raise PIWebAPIError(
            "PI Web API answered POST /batch without a JSON object",
            method="POST",
            path="/batch",
            advice="check that the server supports the batch controller (PI Web API 2015+)",
        )
    results: dict[str, BatchItemResult] = {}
    for key in requests:
        item = body.get(key)
        if not isinstance(item, dict):
            results[key] = BatchItemResult(key, 0, "the batch response has no entry for this request")
            continue
        results[key] = BatchItemResult(key, int(item.get("Status", 0)), item.get("Content"))
    return results


def get_many(
    session: HTTPSession,
    urls: Mapping[str, str],
    *,
    web_ids: Mapping[str, str] | None = None,
    raise_errors: bool = True,
) -> tuple[dict[str, Any], dict[str, PIWebAPIError]]:
    """GET many URLs in one batch (more if sub-requests must be retried); returns (contents, errors) by id.

    Transient sub-failures (5xx, 429, a WebException in the content) are retried in a smaller batch with backoff,
    within the session's retry limit. Other failures become `PIWebAPIError`s naming the sub-request; with
    raise_errors the first one is raised after every other id completed.
    """
    contents: dict[str, Any] = {}
    errors: dict[str, PIWebAPIError] = {}
    pending = dict(urls)
    attempt = 0
    rng = random.Random()
    while pending:
        results = execute(session, {k: get_request(u) for k, u in pending.items()})
        retry: dict[str, str] = {}
        for key, result in results.items():
            url = pending[key]
            path = session.display_path(url)
            web_id = (web_ids or {}).get(key)
            if result.ok:
                try:
                    check_web_exception(result.content, "GET", path, web_id)
                except Exception as exc:  # _Retryable: a WebException inside a 2xx sub-response
                    if attempt < session.config.max_retries:
                        retry[key] = url
                        continue
                    errors[key] = getattr(exc, "error", PIWebAPIError(str(exc)))
                    continue
                contents[key] = result.content
            elif result.status in _RETRY_ITEM and attempt < session.config.max_retries:
                retry[key] = url
            else:
                errors[key] = PIWebAPIError.for_status(
                    result.status,
                    "GET",
                    path + " (in POST /batch)",
                    web_id=web_id,
                    server_errors=server_messages(result.content),
                )
        pending = retry
        if pending:
            session.stats.add(retries=len(pending))
            cap = min(session.config.backoff_max_s, session.config.backoff_base_s * (2**attempt))
            time.sleep(rng.uniform(0.0, cap))
            attempt += 1
    if errors and raise_errors:
        raise next(iter(errors.values()))
    return contents, errors
