"""A snapshot rendered in both formats, in slices that leave the event loop free.

Rendering every target on every scrape would make scrape cost grow with the number of
targets, so the snapshot's families are rendered once, when a cycle publishes, in both
formats, plain and gzip. For gzip the compressor state after the snapshot part is kept, so
that each scrape continues a copy of it with its small live part: one valid gzip stream
without recompressing the snapshot.

Rendering runs in the event loop in slices of targets, yielding between slices: a worker
thread would hold the GIL for seconds with 10,000 targets and stall the loop in between.
Lines of objects that did not change are reused from the previous rendering.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from exporter.domain.state import CloudObject, Snapshot
from exporter.domain.targets import TargetKey
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.textformat import Format, escape, header, sample_lines

_GZIP_WBITS = 31  # zlib's gzip container
# Level 1 compresses these repetitive bodies almost as well as 6 (0.43 vs 0.37 MB at 10,000
# targets) in a quarter of the time, and the time is spent every cycle.
_GZIP_LEVEL = 1
SLICE = 200  # targets rendered between two yields to the event loop (about 10 ms of work)
JOIN = 5000  # lines joined into one piece of the body between two yields


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


# Each target's lines in the cloud-state families, valid while its object stays equal, and
# its label set in the per-target families (which never changes).
CloudLines = dict[TargetKey, tuple[CloudObject | None, tuple[str, ...], str]]


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
        self._bodies: list[list[bytes]] = []  # each family's body, in pieces

    def _cloud(self) -> Iterator[None]:
        snap = self._snapshot
        families = list(self._collector.cloud_families(()))
        lines: list[list[str]] = [[] for _ in families]
        for n, state in enumerate(snap.targets):
            entry = self._previous.get(state.key)
            if entry is None or (entry[0] is not state.obj and entry[0] != state.obj):
                texts = []
                for family in self._collector.cloud_families((state,)):
                    out: list[str] = []
                    sample_lines(family, out)
                    texts.append("".join(out))
                labels = entry[2] if entry is not None else _target_labels(state.key)
                entry = (state.obj, tuple(texts), labels)
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
            sample_lines(family, lines)
            self._families.append(family)
            self._lines.append(lines)

    def _targets(self) -> Iterator[None]:
        """The per-target families, written directly: they change every cycle (the last
        success time does), so their lines cannot be reused, and building a
        prometheus_client family for them costs several times more than the lines
        themselves. The tests hold the result byte-identical to prometheus_client's."""
        families = list(self._collector.target_families(()))  # their headers
        up, exists, success, since = (f.name for f in families)
        lines: list[list[str]] = [[] for _ in families]
        values: dict[float, str] = {0.0: "0.0", 1.0: "1.0"}  # most share one timestamp

        def text(value: float) -> str:
            found = values.get(value)
            if found is None:
                found = values[value] = floatToGoString(value)  # type: ignore[no-untyped-call]
            return found

        for n, t in enumerate(self._snapshot.targets):
            labels = self.cloud_lines[t.key][2]
            lines[0].append(f"{up}{labels} {'1.0' if t.up else '0.0'}\n")
            if t.exists is not None:
                lines[1].append(f"{exists}{labels} {'1.0' if t.exists else '0.0'}\n")
            if t.last_success is not None:
                lines[2].append(f"{success}{labels} {text(t.last_success)}\n")
            if t.status_since is not None:
                lines[3].append(f"{since}{labels} {text(t.status_since)}\n")
            if n % SLICE == SLICE - 1:
                yield
        self._families += families
        self._lines += lines

    def steps(self) -> Iterator[None]:
        """Render slice by slice, yielding between slices."""
        yield from self._cloud()
        yield from self._targets()
        self._new(self._collector.summary_families())
        # The largest family holds tens of MB at 100,000 objects: joined a piece per step.
        for lines in self._lines:
            pieces: list[bytes] = []
            for start in range(0, max(len(lines), 1), JOIN):
                yield
                pieces.append("".join(lines[start : start + JOIN]).encode())
            self._bodies.append(pieces)
        self._lines = []

    def _chunks(self, fmt: Format) -> tuple[bytes, ...]:
        out: list[bytes] = []
        for family, pieces in zip(self._families, self._bodies, strict=True):
            out += (header(family.type, family.name, family.documentation, fmt), *pieces)
        return tuple(out)

    def result(self) -> Rendered:
        """Both formats with their gzip streams (zlib releases the GIL: fine in a thread)."""
        return Rendered(
            self._snapshot,
            Prerendered.of(self._chunks(Format.TEXT)),
            Prerendered.of(self._chunks(Format.OPENMETRICS)),
        )


def _target_labels(key: TargetKey) -> str:
    """``{id="…",project_id="…",resource="…"}``: label names sorted, as prometheus_client
    writes them."""
    return (
        f'{{id="{escape(key.id)}",project_id="{escape(key.project_id)}",'
        f'resource="{key.resource.value}"}}'
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
