"""EmulatorConfig: every setting of the mock PI Web API server, one field per CLI flag.

Frozen so a running emulator's configuration cannot drift; run-time changes (clock, faults) live in EmulatorState.
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_pi.catalog import check_value_rate

AUTH_MODES = ("anonymous", "basic", "bearer", "negotiate", "any")


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    tags: int = 2000
    seed: int = 42
    faults: str = "none"
    auth: str = "anonymous"
    username: str = "pi-user"
    password: str = "pi-pass"
    oidc_client_id: str = "osipi"
    oidc_client_secret: str = "osipi-secret"
    token_ttl_s: int = 3600
    max_returned_items: int = 150_000
    admin: bool = False
    # "real", "frozen:<ISO>" (time stands still) or "offset:<ISO>" (starts at ISO, then runs).
    clock: str = "real"
    clock_rate: float = 1.0
    # Values per second at real time, as a multiple of the catalog's nominal rates (every spacing and scan divided).
    value_rate: int = 1
    data_servers: int = 2
    af_databases: int = 2
    elements_per_db: int = 300
    event_frames_per_day: int = 40
    channel_poll_ms: int = 1000
    # Service keytab (HTTP/<host>@REALM) for --auth negotiate, or to add Negotiate to --auth any.
    keytab: str | None = None
    # PEM server certificate (chain) and private key: serve https:// and wss:// instead of http:// and ws://.
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self) -> None:
        if self.tags < 1:
            raise ValueError(f"tags must be >= 1, got {self.tags}")
        if self.data_servers < 1:
            raise ValueError(f"data_servers must be >= 1, got {self.data_servers}")
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if self.keytab is not None and self.auth not in ("negotiate", "any"):
            raise ValueError(f"keytab applies to auth negotiate or any, not {self.auth!r}")
        if self.max_returned_items < 1:
            raise ValueError(f"max_returned_items must be >= 1, got {self.max_returned_items}")
        if self.clock_rate <= 0:
            raise ValueError(f"clock_rate must be > 0, got {self.clock_rate}")
        check_value_rate(self.value_rate)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "tls_cert and tls_key go together: give both (--tls-cert PATH --tls-key PATH) or neither"
            )
        if not (self.clock == "real" or self.clock.startswith(("frozen:", "offset:"))):
            raise ValueError(f"clock must be 'real', 'frozen:<ISO>' or 'offset:<ISO>', got {self.clock!r}")
