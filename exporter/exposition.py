"""The /metrics body: the snapshot rendered once per poll cycle, plus a small live part.

Rendering every target on every scrape would make scrape cost grow with the number of
targets, so the snapshot's families are rendered when a cycle publishes, in both formats,
plain and gzip. A scrape then only renders the few live families (process, API counters,
reloads) and appends them. For gzip the compressor state after the snapshot part is kept,
and each scrape continues a copy of it, so the answer is one valid gzip stream without
recompressing the snapshot.

Publishing renders in the event loop in slices of targets, yielding between slices: a
worker thread would hold the GIL for seconds with 10,000 targets and stall the loop in
between. The sample lines are written by ``_sample_lines`` (several times faster than
prometheus_client's general-purpose writer, and the same for both formats, since the
families are plain gauges); the family headers come from prometheus_client itself, and the
tests require the whole output to equal prometheus_client's byte for byte.
"""

from __future__ import annotations

import asyncio
import enum
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from exporter.collector import SnapshotCollector
from exporter.state import CloudObject, Snapshot
from exporter.targets import TargetKey

_EOF = b"# EOF\n"
_GZIP_WBITS = 31  # zlib's gzip container
# Level 1 compresses these repetitive bodies almost as well as 6 (0.43 vs 0.37 MB at 10,000
# targets) in a quarter of the time, and the time is spent every cycle.
_GZIP_LEVEL = 1
SLICE = 200  # targets rendered between two yields to the event loop (about 10 ms of work)
# A whole scrape body is reused for this long: the live part (process and API counters) is
# at most this old, and a burst of scrapes costs little more than sending the bytes.
LIVE_TTL = 1.0


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
    media_types = {"application/openmetrics-text": Format.OPENMETRICS, "text/plain": Format.TEXT}
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        fmt = media_types.get(media.strip().lower())
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
    return data[: -len(_EOF)] if data.endswith(_EOF) else data


@lru_cache(maxsize=256)
def _header(kind: str, name: str, documentation: str, fmt: Format) -> bytes:
    """A family's HELP and TYPE lines, written by prometheus_client from an empty family."""
    return encode(_Families([Metric(name, documentation, kind)]), fmt)


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_COMMON_VALUES = {0.0: "0.0", 1.0: "1.0"}


def _sample_lines(family: Metric, out: list[str]) -> None:
    """Append a family's samples as exposition lines (identical in text 0.0.4 and OpenMetrics
    for gauges and info series without timestamps or exemplars)."""
    order: list[str] = []  # label names sorted, as prometheus_client writes them
    for s in family.samples:
        value = _COMMON_VALUES.get(s.value) or floatToGoString(s.value)  # type: ignore[no-untyped-call]
        labels = s.labels
        if not labels:
            out.append(f"{s.name} {value}\n")
            continue
        if len(order) != len(labels) or any(k not in labels for k in order):
            order = sorted(labels)
        pairs = ",".join([f'{k}="{_escape(labels[k])}"' for k in order])
        out.append(f"{s.name}{{{pairs}}} {value}\n")


@dataclass(frozen=True, slots=True)
class Prerendered:
    """One format's snapshot part: its chunks, and the head and state of their gzip stream."""

    chunks: tuple[bytes, ...]
    gzip_head: bytes
    gzip_state: zlib._Compress

    @classmethod
    def of(cls, chunks: tuple[bytes, ...]) -> Prerendered:
        """Start the gzip stream of the chunks (zlib releases the GIL: fine in a thread)."""
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        head = b"".join(compressor.compress(c) for c in chunks)
        return cls(chunks, head, compressor)

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


# Each target's lines in the cloud-state families, valid while its object stays equal.
CloudLines = dict[TargetKey, tuple[CloudObject | None, tuple[str, ...]]]


class _Renderer:
    """Renders one snapshot: ``steps()`` does the work in slices, ``result()`` packs it up.

    Cloud-state lines are reused from ``previous`` for objects that have not changed; the
    lines of this render are left in ``cloud_lines`` for the next one (current targets only).
    """

    def __init__(self, snapshot: Snapshot, previous: CloudLines | None = None) -> None:
        self._snapshot = snapshot
        self._collector = SnapshotCollector(snapshot)
        self._previous = previous or {}
        self.cloud_lines: CloudLines = {}
        self._families: list[Metric] = []
        self._lines: list[list[str]] = []
        self._bodies: list[bytes] = []
        self._first_target_family = 0

    def _cloud(self) -> Iterator[None]:
        snap = self._snapshot
        families = list(self._collector.cloud_families(()))
        lines: list[list[str]] = [[] for _ in families]
        for n, state in enumerate(snap.targets):
            entry = self._previous.get(state.key)
            if entry is None or entry[0] != state.obj:
                texts = []
                for family in self._collector.cloud_families((state,)):
                    out: list[str] = []
                    _sample_lines(family, out)
                    texts.append("".join(out))
                entry = (state.obj, tuple(texts))
            self.cloud_lines[state.key] = entry
            for family_lines, text in zip(lines, entry[1], strict=True):
                family_lines.append(text)
            if n % SLICE == SLICE - 1:
                yield
        self._families += families
        self._lines += lines

    def _new(self, families: Iterator[Metric]) -> None:
        for family in families:
            lines: list[str] = []
            _sample_lines(family, lines)
            self._families.append(family)
            self._lines.append(lines)

    def _more(self, families: Iterator[Metric]) -> None:
        """Samples of the next slice of targets for the per-target families started last."""
        for lines, family in zip(self._lines[self._first_target_family :], families, strict=True):
            _sample_lines(family, lines)

    def steps(self) -> Iterator[None]:
        """Render slice by slice, yielding between slices."""
        snap = self._snapshot
        yield from self._cloud()
        self._first_target_family = len(self._lines)
        slices = [snap.targets[i : i + SLICE] for i in range(0, len(snap.targets), SLICE)] or [()]
        self._new(self._collector.target_families(slices[0]))
        for targets in slices[1:]:
            yield
            self._more(self._collector.target_families(targets))
        self._new(self._collector.summary_families())
        for lines in self._lines:  # the largest family holds a few MB: one per step
            yield
            self._bodies.append("".join(lines).encode())
        self._lines = []

    def _chunks(self, fmt: Format) -> tuple[bytes, ...]:
        out: list[bytes] = []
        for family, body in zip(self._families, self._bodies, strict=True):
            out += (_header(family.type, family.name, family.documentation, fmt), body)
        return tuple(out)

    def result(self) -> Rendered:
        """Both formats with their gzip streams (zlib releases the GIL: fine in a thread)."""
        return Rendered(
            self._snapshot,
            Prerendered.of(self._chunks(Format.TEXT)),
            Prerendered.of(self._chunks(Format.OPENMETRICS)),
        )


def render(snapshot: Snapshot) -> Rendered:
    """Render a snapshot in both formats, all at once (start-up, tests)."""
    renderer = _Renderer(snapshot)
    for _ in renderer.steps():
        pass
    return renderer.result()


async def render_async(
    snapshot: Snapshot, previous: CloudLines | None = None
) -> tuple[Rendered, CloudLines]:
    """Render a snapshot without stalling the event loop: slices in the loop, gzip in a thread.

    Returns the rendering and the cloud-state lines to pass to the next call."""
    renderer = _Renderer(snapshot, previous)
    for _ in renderer.steps():
        await asyncio.sleep(0)
    return await asyncio.to_thread(renderer.result), renderer.cloud_lines


class Exposition:
    """Holds the latest rendered snapshot and assembles scrape bodies."""

    def __init__(self, live: CollectorRegistry, initial: Snapshot) -> None:
        self._live = live
        self.current = render(initial)
        self._bodies: dict[tuple[Format, bool], tuple[Rendered, float, list[bytes]]] = {}
        self._cloud_lines: CloudLines = {}

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served."""
        return self.current.snapshot

    def refresh_live(self) -> None:
        """Render the live part afresh at the next scrape (after an event such as a reload)."""
        self._bodies.clear()

    async def publish(self, snapshot: Snapshot) -> None:
        """Render, then swap in with one assignment: scrapes see whole bodies.

        Calls never overlap: the poller publishes under its merge lock."""
        self.current, self._cloud_lines = await render_async(snapshot, self._cloud_lines)

    def body(self, fmt: Format, gzip: bool) -> list[bytes]:
        """The chunks of one scrape's body, in order; reused for up to LIVE_TTL seconds
        while the snapshot is the same."""
        current, now = self.current, time.monotonic()
        cached = self._bodies.get((fmt, gzip))
        if cached is not None and cached[0] is current and now - cached[1] < LIVE_TTL:
            return cached[2]
        part = current.part(fmt)
        tail = encode(self._live, fmt)
        if fmt is Format.OPENMETRICS:
            tail += _EOF
        chunks = [part.gzip(tail)] if gzip else [*part.chunks, tail]
        self._bodies[(fmt, gzip)] = (current, now, chunks)
        return chunks
