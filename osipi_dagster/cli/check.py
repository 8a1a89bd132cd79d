"""`osipi check`: test one connection step by step and give a verdict with the fix for each failure.

Steps: reachability, TLS, PI Web API at that path, auth (the user PI sees), server versions, clock offset, data
servers, AF databases, tags selected by the filter, and a sample read. A failed step skips the ones that need it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

from osipi_dagster.lib.piwebapi import (
    AuthenticationError,
    ClientConfig,
    NotFoundError,
    PIWebAPIClient,
    PIWebAPIError,
    TLSVerificationError,
)
from osipi_dagster.lib.piwebapi.models import DataServer
from osipi_dagster.lib.piwebapi.pitime import parse_time
from osipi_dagster.lib.settings import Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
CLOCK_TOLERANCE_S = 60.0
T = TypeVar("T")
SAMPLE_TAGS = 10  # tags tried by the sample read (the first may be stale)


@dataclass
class Step:
    name: str
    status: str
    detail: str
    fix: str = ""


def wildcard(pattern: str) -> re.Pattern[str]:
    """A PI name filter (`*`, `?`, case-insensitive) as a regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)


class Checker:
    """Runs the steps against one connection; `field()` names a setting the way its source does."""

    def __init__(self, settings: Settings, from_env: bool) -> None:
        self.settings = settings
        self.from_env = from_env
        self.steps: list[Step] = []
        self.facts: dict[str, Any] = {}

    def field(self, name: str, env: str) -> str:
        return env if self.from_env else f"{name} ({env})"

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.steps.append(Step(name, status, detail, fix))

    def run(self) -> list[Step]:
        config = ClientConfig.from_settings(
            self.settings,
            max_retries=1,
            retry_budget_s=10.0,
            backoff_base_s=0.1,
            timeout_s=min(self.settings.timeout_s, 15.0),
            connect_timeout_s=5.0,
        )
        with PIWebAPIClient(config) as client:
            if self._connect(client):
                self._guarded("auth", self._identity, client)
                self._guarded("clock", self._clock, client)
                servers = self._guarded("data servers", self._data_servers, client) or []
                self._guarded("af databases", self._af, client)
                web_id = self._guarded("tag filter", self._tags, client, servers)
                self._guarded("sample read", self._sample, client, web_id)
        return self.steps

    def _guarded(self, name: str, step: Callable[..., T], *args: Any) -> T | None:
        """Run a step; a PI error (403 on one collection, a timeout) fails that step, not the whole check."""
        try:
            return step(*args)
        except PIWebAPIError as exc:
            self.add(name, FAIL, exc.message, exc.advice)
            return None

    # -- steps ---------------------------------------------------------------------------------------------------
    def _connect(self, client: PIWebAPIClient) -> bool:
        url = self.settings.pi_web_api_url
        https = url.startswith("https://")
        url_name = self.field("pi_web_api_url", "PI_WEB_API_URL")
        try:
            system = client.get("system") or {}
        except TLSVerificationError as exc:
            self.add("reachability", OK, f"{urlparse(url).netloc} accepts connections")
            self.add("tls", FAIL, exc.message, exc.advice)
            return False
        except AuthenticationError as exc:
            self._reached(https)
            self.add("auth", FAIL, exc.message, exc.advice)
            return False
        except NotFoundError:
            self._reached(https)
            self.add(
                "pi web api", FAIL, f"{url}/system answered 404: no PI Web API at this path",
                f"set {url_name} to the PI Web API root, which ends in /piwebapi (e.g. https://host/piwebapi)",
            )  # fmt: skip
            return False
        except PIWebAPIError as exc:
            if exc.status is None:
                self.add(
                    "reachability", FAIL, exc.message,
                    f"check {url_name} (host and port), DNS, firewalls and that PI Web API is running",
                )  # fmt: skip
            else:
                self._reached(https)
                self.add("pi web api", FAIL, exc.message, exc.advice)
            return False
        self._reached(https)
        title = system.get("ProductTitle") or "PI Web API"
        version = system.get("ProductVersion") or "unknown version"
        self.facts["server_version"] = f"{title} {version}"
        self.add("pi web api", OK, f"{title} {version}")
        return True

    def _reached(self, https: bool) -> None:
        self.add("reachability", OK, f"{urlparse(self.settings.pi_web_api_url).netloc} answered")
        if https:
            trust = "verification off" if not self.settings.verify_tls else "certificate trusted"
            self.add("tls", WARN if not self.settings.verify_tls else OK, trust,
                     "" if self.settings.verify_tls else
                     f"verify certificates in production: set {self.field('ca_bundle', 'PI_CA_BUNDLE')}")  # fmt: skip
        else:
            self.add("tls", SKIP, "plain http: traffic and credentials are not encrypted")

    def _identity(self, client: PIWebAPIClient) -> None:
        info = client.get("system/userinfo") or {}
        user = info.get("Name") or "?"
        kind = info.get("IdentityType") or "?"
        self.facts["user"] = user
        method = self.settings.auth_method
        if method != "anonymous" and not info.get("IsAuthenticated", True):
            self.add("auth", FAIL, f"PI sees {user} ({kind}) although auth_method={method}",
                     "PI Web API accepted the request anonymously: enable its "
                     f"{method} authentication or set auth_method=anonymous")  # fmt: skip
        else:
            self.add("auth", OK, f"PI sees {user} ({kind}, {method})")

    def _clock(self, client: PIWebAPIClient) -> None:
        status = client.get("system/status") or {}
        text = status.get("ServerTime")
        if not text:
            self.add("clock", WARN, "system/status has no ServerTime", "")
            return
        offset = (parse_time(str(text)) - datetime.now(UTC)).total_seconds()
        self.facts["clock_offset_s"] = round(offset, 3)
        detail = f"server clock {offset:+.1f} s from this machine's"
        if abs(offset) > CLOCK_TOLERANCE_S:
            self.add("clock", WARN, detail,
                     "synchronise both clocks (NTP): schedules and 'last hour' windows shift by the offset")  # fmt: skip
        else:
            self.add("clock", OK, detail)

    def _data_servers(self, client: PIWebAPIClient) -> list[DataServer]:
        servers = client.data_servers()
        names = ", ".join(s.name for s in servers) or "none"
        self.facts["data_servers"] = [s.name for s in servers]
        wanted = self.settings.data_servers
        by_name = {s.name.lower(): s for s in servers} | {s.path.lower().lstrip("\\"): s for s in servers}
        missing = [w for w in wanted if w.lower().lstrip("\\") not in by_name]
        if missing:
            self.add("data servers", FAIL, f"no data server {', '.join(missing)} (PI has: {names})",
                     f"fix {self.field('data_servers', 'PI_DATA_SERVERS')}")  # fmt: skip
        elif not servers:
            self.add("data servers", FAIL, "PI Web API lists no data server", "ask the PI administrator")
        else:
            versions = ", ".join(f"{s.name} {s.server_version}".strip() for s in servers)
            self.add("data servers", OK, versions)
        chosen = [by_name[w.lower().lstrip("\\")] for w in wanted if w.lower().lstrip("\\") in by_name]
        return chosen if wanted else [s for s in servers if s.is_connected]

    def _af(self, client: PIWebAPIClient) -> None:
        paths = [d.path for a in client.asset_servers() for d in client.asset_databases(a)]
        self.facts["af_databases"] = paths
        known = {p.lower() for p in paths}
        missing = [w for w in self.settings.af_databases if w.lower() not in known]
        if missing:
            self.add("af databases", FAIL, f"no AF database {', '.join(missing)} (AF has: {', '.join(paths) or 'none'})",
                     f"fix {self.field('af_databases', 'PI_AF_DATABASES')}; `osipi browse af` lists them")  # fmt: skip
        else:
            chosen = self.settings.af_databases or paths
            self.add(
                "af databases", OK, f"{len(chosen)} selected of {len(paths)}: {', '.join(chosen) or 'none'}"
            )

    def _tags(self, client: PIWebAPIClient, servers: list[DataServer]) -> dict[str, str]:
        """Counts the tags the filter selects; returns the first few (web id → name) for the sample read."""
        pattern = self.settings.tag_filter
        count, sample = 0, {}
        for server in servers:
            for frame in client.iter_points(server, pattern):
                count += frame.height
                for row in frame.head(SAMPLE_TAGS - len(sample)).iter_rows(named=True):
                    sample[row["web_id"]] = row["name"]
        self.facts["tags_selected"] = count
        where = ", ".join(s.name for s in servers) or "no data server"
        if count == 0:
            self.add("tag filter", FAIL, f"{pattern!r} selects no tag on {where}",
                     f"fix {self.field('tag_filter', 'PI_TAG_FILTER')}; try `osipi browse tags \"name:...\"`")  # fmt: skip
        else:
            self.add("tag filter", OK, f"{pattern!r} selects {count} tags on {where}")
        return sample

    def _sample(self, client: PIWebAPIClient, sample: dict[str, str] | None) -> None:
        """Recorded values of the last hour (server time) of the first selected tags: reports the first with data."""
        if not sample:
            self.add("sample read", SKIP, "no tag selected")
            return
        frame = client.recorded(list(sample), "*-1h", "*")
        counts = frame.group_by("web_id").len()
        by_id = dict(zip(counts["web_id"].to_list(), counts["len"].to_list(), strict=True))
        hit = next((w for w in sample if by_id.get(w)), None)
        self.facts["sample_values"] = by_id.get(hit, 0) if hit else 0
        if hit is None:
            self.add("sample read", WARN, f"no recorded value in the last hour of the first {len(sample)} selected tags",
                     "the tags may be stale or their interfaces down: check them in PI")  # fmt: skip
        else:
            self.add("sample read", OK, f"{by_id[hit]} recorded values in the last hour of {sample[hit]!r}")


def verdict(steps: list[Step]) -> tuple[bool, str]:
    """(healthy, one line): healthy when no step failed; the line names each failure and its fix."""
    failed = [s for s in steps if s.status == FAIL]
    if not failed:
        warned = [s.name for s in steps if s.status == WARN]
        return True, "HEALTHY" + (f" (warnings: {', '.join(warned)})" if warned else "")
    return False, "UNHEALTHY: " + "; ".join(f"{s.name} failed: {s.fix or s.detail}" for s in failed)


def as_json(steps: list[Step]) -> list[dict[str, str]]:
    return [asdict(s) for s in steps]
