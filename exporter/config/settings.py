"""Resolved settings: plain frozen data the rest of the exporter runs on.

``PollSettings`` is also the schema of the ``poll`` section: pydantic validates the
dataclass directly, so its fields, limits and defaults are declared once, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, ConfigDict, Field

from exporter.cloud.network import Network
from exporter.domain.accounts import Account
from exporter.domain.credentials import Credentials, secrets_of
from exporter.domain.targets import Sweep, Target

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a Prometheus-style duration string such as ``90s`` or ``1m30s``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 60, 90s or 5m, got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration; write a number of seconds or a duration "
                    "such as 500ms, 90s, 5m or 1h30m"
                ) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 60, 90s or 5m")
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


@dataclass(frozen=True, slots=True)
class PollSettings:
    """``poll``: how often and how hard the APIs are called."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    interval: Duration = 60.0
    timeout: Duration = 10.0
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 16
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    max_requests_per_second: Annotated[float | None, Field(gt=0)] = None
    projects_refresh_interval: Duration = 600.0  # how often accounts' project lists are read
    # Objects in a transitional status (CREATING, BUILDING, DELETING) are asked about this
    # often between cycles; None: only in cycles.
    transitional_interval: Duration | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """A validated, resolved configuration."""

    poll: PollSettings
    targets: tuple[Target, ...]
    sweeps: tuple[Sweep, ...] = ()
    accounts: tuple[Account, ...] = ()
    # Which credential source each credentials block uses, and why ("credentials: source
    # metadata (auto: ...)"), for --check-config.
    credential_notes: tuple[str, ...] = ()
    # Proxies and TLS trust for every call to the cloud.
    network: Network = field(default_factory=Network)

    @property
    def credentials(self) -> frozenset[Credentials]:
        """Every set of credentials in use."""
        return frozenset(
            [t.credentials for t in self.targets]
            + [s.credentials for s in self.sweeps]
            + [a.credentials for a in self.accounts]
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so that logging can redact them should one ever slip through."""
        found = {s for c in self.credentials for s in secrets_of(c)}
        return tuple(found | set(self.network.secrets))
