"""Expected values for client tests, computed with mock_pi's own archive (an independent in-process copy).

The emulator's values are a pure function of (seed, point, time), so a local Archive agrees with the server.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from mock_pi.archive import Archive
from mock_pi.catalog import SYSTEM_STATES, Catalog, Point

SEED = 42
TAGS = 500
NOW = datetime.fromisoformat("2024-05-01T12:00:00+00:00")


def us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


class Expected:
    """Catalog + archive mirroring an emulator started with `--seed SEED --tags TAGS --clock frozen:NOW`."""

    def __init__(self, seed: int = SEED, tags: int = TAGS, now: datetime = NOW) -> None:
        self.catalog = Catalog(seed, tags)
        now_us = us(now)
        self.archive = Archive(seed, lambda: now_us)

    def point(self, index: int) -> Point:
        return self.catalog.point_at(index)

    def recorded(
        self, points: list[Point], start: datetime, end: datetime, include_end: bool
    ) -> pl.DataFrame:
        """The archive's values for [start, end) (or ]) in the client's VALUES_SCHEMA columns that matter."""
        frames = []
        for p in points:
            v = self.archive.recorded(p, us(start), us(end))
            keep = np.ones(len(v), dtype=bool) if include_end else v.ts_us < us(end)
            v = v.take(keep)
            n = len(v)
            ordinal = np.zeros(n, dtype=np.int64)
            for i in range(1, n):
                if v.ts_us[i] == v.ts_us[i - 1]:
                    ordinal[i] = ordinal[i - 1] + 1
            code = v.digital_code
            numeric_value = p.is_numeric and True
            text: list[str | None] = []
            for i in range(n):
                c = int(code[i])
                if c >= 0:
                    names = SYSTEM_STATES if v.is_system[i] else p.digital_set.names_by_code  # type: ignore[union-attr]
                    text.append(names[c])
                elif v.text is not None:
                    text.append(v.text[i])
                else:
                    text.append(None)
            value = [float(v.value[i]) if numeric_value and int(code[i]) < 0 else None for i in range(n)]
            frames.append(
                pl.DataFrame(
                    {
                        "web_id": [p.web_id] * n,
                        "timestamp": pl.Series(v.ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
                        "ordinal": pl.Series(ordinal, dtype=pl.Int32),
                        "value": pl.Series(value, dtype=pl.Float64),
                        "value_text": pl.Series(text, dtype=pl.Utf8),
                        "digital_code": pl.Series([int(c) if c >= 0 else None for c in code], dtype=pl.Int32),
                        "is_system": pl.Series(v.is_system, dtype=pl.Boolean),
                        "good": pl.Series(v.good, dtype=pl.Boolean),
                        "questionable": pl.Series(v.questionable, dtype=pl.Boolean),
                        "substituted": pl.Series(v.substituted, dtype=pl.Boolean),
                        "annotated": pl.Series(v.annotated, dtype=pl.Boolean),
                    }
                )
            )
        return pl.concat(frames)


COMPARE = ["web_id", "timestamp", "ordinal", "value", "value_text", "digital_code", "is_system", "good",
           "questionable", "substituted", "annotated"]  # fmt: skip


def assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Row-for-row equality on the value columns, both sorted by (web_id, timestamp, ordinal)."""
    from polars.testing import assert_frame_equal

    key = ["web_id", "timestamp", "ordinal"]
    assert_frame_equal(
        got.select(COMPARE).sort(key, maintain_order=True),
        want.select(COMPARE).sort(key, maintain_order=True),
        check_exact=False,
        rel_tol=1e-12,
    )
