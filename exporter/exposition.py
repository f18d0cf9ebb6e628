"""The /metrics body: the snapshot rendered once per poll cycle, plus a small live part.

Rendering every target on every scrape would make scrape cost grow with the number of
targets, so the snapshot's families are rendered when a cycle publishes (in a worker thread,
off the event loop) in both formats, plain and gzip. A scrape then only renders the few
live families (process, API counters, reloads) and appends them. For gzip the compressor
state after the snapshot part is kept, and each scrape continues a copy of it, so the
answer is one valid gzip stream without recompressing the snapshot.
"""

from __future__ import annotations

import asyncio
import enum
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.collector import SnapshotCollector
from exporter.state import Snapshot

_EOF = b"# EOF\n"
_GZIP_WBITS = 31  # zlib's gzip container
_GZIP_LEVEL = 6


class Format(enum.Enum):
    """The two exposition formats, with their Content-Type."""

    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _quality(params: list[str]) -> float:
    for p in params:
        name, _, value = p.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> Format:
    """OpenMetrics when the client accepts it at least as much as plain text, else text 0.0.4."""
    best = {Format.TEXT: 0.0, Format.OPENMETRICS: -1.0}
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        fmt = {"application/openmetrics-text": Format.OPENMETRICS, "text/plain": Format.TEXT}.get(
            media
        )
        if fmt is not None:
            best[fmt] = max(best[fmt], _quality(params))
    if best[Format.OPENMETRICS] > 0 and best[Format.OPENMETRICS] >= best[Format.TEXT]:
        return Format.OPENMETRICS
    return Format.TEXT


def gzip_accepted(accept_encoding: str | None) -> bool:
    """Whether the client takes a gzip body (``q=0`` refuses it)."""
    for item in (accept_encoding or "").split(","):
        coding, *params = item.split(";")
        if coding.strip().lower() == "gzip" and _quality(params) > 0:
            return True
    return False


class _Families(Collector):
    """Serves families collected once, so both formats render from one collection."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def encode(registry: Collector, fmt: Format) -> bytes:
    """Render a registry in one format; OpenMetrics without its closing ``# EOF``."""
    if fmt is Format.TEXT:
        return text_format.generate_latest(registry)
    data: bytes = openmetrics_format.generate_latest(registry)  # type: ignore[no-untyped-call]
    return data[: -len(_EOF)] if data.endswith(_EOF) else data


@dataclass(frozen=True, slots=True)
class Prerendered:
    """One format's snapshot part, plain and as the head of a gzip stream."""

    plain: bytes
    gzip_head: bytes
    gzip_state: zlib._Compress

    @classmethod
    def of(cls, data: bytes) -> Prerendered:
        """Render the plain bytes and start their gzip stream."""
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return cls(data, compressor.compress(data), compressor)

    def gzip(self, tail: bytes) -> bytes:
        """The whole body gzip-compressed: the stored head, then ``tail`` on a copy of the state."""
        compressor = self.gzip_state.copy()
        return self.gzip_head + compressor.compress(tail) + compressor.flush()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A snapshot and its exposition in both formats."""

    snapshot: Snapshot
    text: Prerendered
    openmetrics: Prerendered

    def part(self, fmt: Format) -> Prerendered:
        """The pre-rendered part for a format."""
        return self.text if fmt is Format.TEXT else self.openmetrics


def render(snapshot: Snapshot) -> Rendered:
    """Render a snapshot in both formats (CPU-bound: call it from a worker thread)."""
    families = _Families(list(SnapshotCollector(snapshot).collect()))
    return Rendered(
        snapshot,
        Prerendered.of(encode(families, Format.TEXT)),
        Prerendered.of(encode(families, Format.OPENMETRICS)),
    )


class Exposition:
    """Holds the latest rendered snapshot and assembles scrape bodies."""

    def __init__(self, live: CollectorRegistry, initial: Snapshot) -> None:
        self._live = live
        self.current = render(initial)

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served."""
        return self.current.snapshot

    async def publish(self, snapshot: Snapshot) -> None:
        """Render off the event loop, then swap in with one assignment: scrapes see whole bodies."""
        self.current = await asyncio.to_thread(render, snapshot)

    def body(self, fmt: Format, gzip: bool) -> list[bytes]:
        """The chunks of one scrape's body, in order."""
        part = self.current.part(fmt)
        tail = encode(self._live, fmt)
        if fmt is Format.OPENMETRICS:
            tail += _EOF
        if gzip:
            return [part.gzip(tail)]
        return [part.plain, tail]
