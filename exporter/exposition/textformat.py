"""The exposition text: family headers from prometheus_client, sample lines written here.

The sample lines are written by ``sample_lines`` (several times faster than
prometheus_client's general-purpose writer, and the same for both formats, since the
families are plain gauges and info series); the family headers come from prometheus_client
itself, and the tests require the whole output to equal prometheus_client's byte for byte.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from functools import lru_cache

from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

EOF_MARKER = b"# EOF\n"


class Format(enum.Enum):
    """The two exposition formats, with their Content-Type."""

    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class _Families(Collector):
    """Serves families collected once, so they can be handed to prometheus_client's writers."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def encode(registry: Collector, fmt: Format) -> bytes:
    """Render with prometheus_client in one format; OpenMetrics without its closing ``# EOF``."""
    if fmt is Format.TEXT:
        return text_format.generate_latest(registry)
    data: bytes = openmetrics_format.generate_latest(registry)  # type: ignore[no-untyped-call]
    return data[: -len(EOF_MARKER)] if data.endswith(EOF_MARKER) else data


@lru_cache(maxsize=256)
def header(kind: str, name: str, documentation: str, fmt: Format) -> bytes:
    """A family's HELP and TYPE lines, written by prometheus_client from an empty family."""
    return encode(_Families([Metric(name, documentation, kind)]), fmt)


def needs_escape(value: str) -> bool:
    """Whether ``value`` holds a character a label value escapes."""
    return "\\" in value or "\n" in value or '"' in value


def escape(value: str) -> str:
    """A label value escaped for the exposition formats."""
    if needs_escape(value):
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_COMMON_VALUES = {0.0: "0.0", 1.0: "1.0"}


def number(value: float) -> str:
    """A sample value as prometheus_client writes it."""
    return _COMMON_VALUES.get(value) or floatToGoString(value)  # type: ignore[no-untyped-call]


def sample_lines(family: Metric, out: list[str]) -> None:
    """Append a family's samples as exposition lines (identical in text 0.0.4 and
    OpenMetrics for gauges and info series without timestamps or exemplars)."""
    order: list[str] = []  # label names sorted, as prometheus_client writes them
    for s in family.samples:
        value = number(s.value)
        labels = s.labels
        if not labels:
            out.append(f"{s.name} {value}\n")
            continue
        if len(order) != len(labels) or any(k not in labels for k in order):
            order = sorted(labels)
        pairs = ",".join([f'{k}="{escape(labels[k])}"' for k in order])
        out.append(f"{s.name}{{{pairs}}} {value}\n")
