"""The `osipi` data source's options → validated settings (no pyspark import).

Connection options are the environment contract's variables in lower case without `PI_` (`pi_web_api_url`,
`auth_method`, `password`, …): they are handed to `Settings.from_env` under their variable names, so a bad value
fails with the same check as everywhere else, reworded to name the option. Secrets stay out of `repr()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from osipi_dagster.lib.piwebapi import ClientConfig
from osipi_dagster.lib.piwebapi.pitime import PITimeError, parse_interval, parse_time
from osipi_dagster.lib.piwebapi.summaries import CALCULATION_BASES, SUMMARY_TYPES
from osipi_dagster.lib.settings import Settings, SettingsError

# Option → environment variable of the settings contract (osipi_dagster/lib/settings.py).
CONNECTION_OPTIONS: dict[str, str] = {
    "pi_web_api_url": "PI_WEB_API_URL",
    "auth_method": "PI_AUTH_METHOD",
    "username": "PI_USERNAME",
    "password": "PI_PASSWORD",
    "bearer_token": "PI_BEARER_TOKEN",
    "oidc_token_url": "PI_OIDC_TOKEN_URL",
    "oidc_client_id": "PI_OIDC_CLIENT_ID",
    "oidc_client_secret": "PI_OIDC_CLIENT_SECRET",
    "oidc_scope": "PI_OIDC_SCOPE",
    "verify_tls": "PI_VERIFY_TLS",
    "ca_bundle": "PI_CA_BUNDLE",
    "data_servers": "PI_DATA_SERVERS",
    "tag_filter": "PI_TAG_FILTER",
    "af_databases": "PI_AF_DATABASES",
}
SECRET_OPTIONS = frozenset({"password", "bearer_token", "oidc_client_secret"})

TABLES = ("recorded", "points", "af_elements", "af_attributes", "event_frames", "interpolated", "summary")
TIME_TABLES = frozenset({"recorded", "event_frames", "interpolated", "summary"})
SIZINGS = ("count", "tags")
# name → what it does (error messages and docs/databricks.md list them).
READ_OPTIONS: dict[str, str] = {
    "table": "recorded (default) | points | af_elements | af_attributes | event_frames | interpolated | summary",
    "start": "window start: PI time (*-1h, t, y+8h) or ISO 8601; streams: where a new query starts (default *)",
    "end": "window end, exclusive (default *); batch only",
    "interval": "interpolated: spacing such as 10m",
    "summary_types": "summary: comma-separated PI summary types (default Average)",
    "summary_duration": "summary: one row per this span (default: one over the window)",
    "calculation_basis": "summary: PI calculation basis (default TimeWeighted)",
    "values_per_partition": "recorded: values per unit of work (default 150000, one PI call's worth)",
    "max_partitions": "at most this many input partitions, so at most this many concurrent PI readers (default 8)",
    "sizing": "recorded: count (PI Count summary per tag, default) | tags (even tag shards, no extra call)",
    "max_concurrency": "HTTP calls in flight per partition (default 4)",
    "timeout_s": "per-call timeout in seconds (default 30)",
    "max_retries": "retries per call (default 5)",
    "outage_timeout_s": "streams: how long PI may be unreachable before the query fails (default 600)",
    "min_poll_interval_s": "streams: least time between two probes of PI for new values (default 1)",
}
DEFAULT_VALUES_PER_PARTITION = 150_000
DEFAULT_MAX_PARTITIONS = 8
DEFAULT_MAX_CONCURRENCY = 4


class OptionError(ValueError):
    """A missing, unknown or invalid option of the osipi data source; the message names the option."""


@dataclass(frozen=True)
class SourceOptions:
    """Everything a reader needs, parsed once on the driver and pickled to the executors."""

    settings: Settings
    table: str = "recorded"
    start: str | None = None
    end: str = "*"
    interval: str | None = None
    summary_types: tuple[str, ...] = ("Average",)
    summary_duration: str | None = None
    calculation_basis: str = "TimeWeighted"
    values_per_partition: int = DEFAULT_VALUES_PER_PARTITION
    max_partitions: int = DEFAULT_MAX_PARTITIONS
    sizing: str = "count"
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    timeout_s: float = 30.0
    max_retries: int = 5
    outage_timeout_s: float = 600.0
    min_poll_interval_s: float = 1.0

    def client_config(self) -> ClientConfig:
        return ClientConfig.from_settings(
            self.settings,
            max_concurrency=self.max_concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            user_agent="osipi-dagster-spark",
        )


def parse_options(options: Mapping[str, str], *, streaming: bool = False) -> SourceOptions:
    """Validate the options of `spark.read(Stream).format("osipi")`; raises OptionError naming the option."""
    opts = {str(k).lower(): str(v) for k, v in options.items() if v is not None}
    known = set(CONNECTION_OPTIONS) | set(READ_OPTIONS)
    unknown = sorted(k for k in opts if k not in known)
    if unknown:
        raise OptionError(
            f"osipi: unknown option(s) {', '.join(unknown)}. Known options: {', '.join(sorted(known))}."
        )
    settings = _settings(opts)
    table = opts.get("table", "recorded").strip().lower()
    if table not in TABLES:
        raise OptionError(f"osipi: table={table!r} is not one of {', '.join(TABLES)}.")
    if streaming and table != "recorded":
        raise OptionError(f"osipi: streaming reads table=recorded only, not table={table!r}.")
    start = opts.get("start")
    end = opts.get("end", "*")
    if streaming and "end" in opts:
        raise OptionError(
            "osipi: a stream has no end: drop the end option (start says where a new query starts)."
        )
    if table in TIME_TABLES and not streaming and not start:
        raise OptionError(f"osipi: table={table} needs the start option, e.g. .option('start', '*-1h').")
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            _check_time(name, value)
    interval = opts.get("interval")
    if table == "interpolated":
        if not interval:
            raise OptionError(
                "osipi: table=interpolated needs the interval option, e.g. .option('interval', '10m')."
            )
        _check_span("interval", interval)
    duration = opts.get("summary_duration")
    if duration:
        _check_span("summary_duration", duration)
    return SourceOptions(
        settings=settings,
        table=table,
        start=start,
        end=end,
        interval=interval,
        summary_types=tuple(_choices("summary_types", opts.get("summary_types", "Average"), SUMMARY_TYPES)),
        summary_duration=duration,
        calculation_basis=_choices(
            "calculation_basis", opts.get("calculation_basis", "TimeWeighted"), CALCULATION_BASES
        )[0],
        values_per_partition=_positive_int(opts, "values_per_partition", DEFAULT_VALUES_PER_PARTITION),
        max_partitions=_positive_int(opts, "max_partitions", DEFAULT_MAX_PARTITIONS),
        sizing=_choices("sizing", opts.get("sizing", "count"), SIZINGS)[0],
        max_concurrency=_positive_int(opts, "max_concurrency", DEFAULT_MAX_CONCURRENCY),
        timeout_s=_positive_float(opts, "timeout_s", 30.0),
        max_retries=_positive_int(opts, "max_retries", 5, minimum=0),
        outage_timeout_s=_positive_float(opts, "outage_timeout_s", 600.0),
        min_poll_interval_s=_positive_float(opts, "min_poll_interval_s", 1.0, allow_zero=True),
    )


def _settings(opts: Mapping[str, str]) -> Settings:
    environ = {var: opts[name] for name, var in CONNECTION_OPTIONS.items() if name in opts}
    if "PI_WEB_API_URL" not in environ:
        raise OptionError(
            "osipi: the pi_web_api_url option is not set: .option('pi_web_api_url', "
            "'https://pi.example.com/piwebapi')."
        )
    try:
        return Settings.from_env(environ)
    except SettingsError as err:
        message = str(err)
        # Longest names first, so PI_OIDC_CLIENT_SECRET is not half-replaced by a shorter name.
        for name, var in sorted(CONNECTION_OPTIONS.items(), key=lambda kv: -len(kv[1])):
            message = message.replace(var, f"option {name}")
        raise OptionError(f"osipi: {message}") from None


def _check_time(name: str, value: str) -> None:
    try:
        parse_time(value, datetime(2001, 1, 1, tzinfo=UTC))
    except PITimeError as err:
        raise OptionError(f"osipi: option {name}: {err}") from None


def _check_span(name: str, value: str) -> None:
    try:
        span = parse_interval(value)
    except PITimeError as err:
        raise OptionError(f"osipi: option {name}: {err}") from None
    if span.total_seconds() <= 0:
        raise OptionError(f"osipi: option {name}={value!r} must be a positive span such as 10m.")


def _choices(name: str, value: str, allowed: tuple[str, ...]) -> list[str]:
    by_lower = {a.lower(): a for a in allowed}
    picked = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in picked if v.lower() not in by_lower]
    if bad or not picked:
        raise OptionError(f"osipi: option {name}={value!r}: use {' | '.join(allowed)}.")
    return [by_lower[v.lower()] for v in picked]


def _positive_int(opts: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    if name not in opts:
        return default
    try:
        value = int(opts[name])
    except ValueError:
        raise OptionError(f"osipi: option {name}={opts[name]!r} is not an integer.") from None
    if value < minimum:
        raise OptionError(f"osipi: option {name}={value} must be at least {minimum}.")
    return value


def _positive_float(opts: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    if name not in opts:
        return default
    try:
        value = float(opts[name])
    except ValueError:
        raise OptionError(f"osipi: option {name}={opts[name]!r} is not a number.") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise OptionError(
            f"osipi: option {name}={value} must be {'0 or more' if allow_zero else 'positive'}."
        )
    return value
