"""EmulatorState: the one object every handler and middleware reads (config, clock, catalog, archive, AF, metrics).

Built once by create_app and stored as `app.state.emulator`; other modules may hang run-time helpers on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mock_pi.af import AFModel
from mock_pi.archive import Archive
from mock_pi.catalog import Catalog, Point
from mock_pi.clock import Clock
from mock_pi.config import EmulatorConfig
from mock_pi.metrics import Metrics


@dataclass(frozen=True)
class StreamSource:
    """What a stream WebId refers to: the point holding the data plus the name/path the stream is known by."""

    point: Point
    web_id: str
    name: str
    path: str
    units: str
    default_range: tuple[int, int] | None = None  # e.g. an event-frame attribute's own start/end


@dataclass(eq=False)
class EmulatorState:
    config: EmulatorConfig
    clock: Clock
    catalog: Catalog
    archive: Archive
    af: AFModel
    metrics: Metrics
    started_monotonic: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, config: EmulatorConfig) -> EmulatorState:
        clock = Clock(config.clock, config.clock_rate)
        catalog = Catalog(config.seed, config.tags, config.data_servers, config.value_rate)
        archive = Archive(config.seed, clock.now_us)
        return cls(config, clock, catalog, archive, AFModel(config, catalog), Metrics())

    def stream_source(self, web_id: str) -> StreamSource | None:
        """Resolve a PI point WebId or an AF attribute WebId with a PI Point data reference."""
        point = self.catalog.point(web_id)
        if point is not None:
            return StreamSource(point, web_id, point.name, point.path, point.units)
        attr: Any = self.af.attribute(web_id)
        if attr is None or getattr(attr, "point", None) is None:
            return None
        default_range = self.af.stream_time_context(web_id, self.clock.now_us())
        units = getattr(attr, "units_abbr", "") or attr.point.units
        return StreamSource(attr.point, web_id, attr.name, attr.path, units, default_range)
