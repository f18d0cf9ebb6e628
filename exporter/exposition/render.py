"""A snapshot rendered once, as deflated pieces shared with the previous rendering wherever
they agree.

Rendering every target on every scrape would make scrape cost grow with the number of
targets, so the snapshot's families are rendered once, when a cycle publishes. As in
kube-state-metrics, what was rendered is kept between renderings, here a block of targets at
a time (``exporter.exposition.blocks``): a block whose targets show what they showed, a
project's dev-server usage lines while its counts hold and its last-job lines while its
latest sub-jobs do, are the very same pieces as last time. A rendering is a list of
sections, each a family header and the pieces of its body, each piece deflated once when it
is written (``exporter.exposition.deflate``): the body is held once, compressed, and a gzip
stream is assembled from the pieces without compressing them again.

Rendering runs in the event loop in slices of targets, yielding between slices: a worker
thread would hold the GIL for seconds with 100,000 targets and stall the loop in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from exporter.domain.jobs import SubJob
from exporter.domain.state import Snapshot
from exporter.domain.targets import TargetKey
from exporter.domain.usage import ImageUse, UsageState
from exporter.exposition.blocks import WORK, Block, BlockWriter, blocks
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.deflate import Compressed, Packed, batched, compress, pack
from exporter.exposition.selection import ALL, Selection
from exporter.exposition.textformat import Format, header, sample_lines


@dataclass(frozen=True, slots=True)
class Section:
    """One family: what its header is made of, and its sample lines in pieces."""

    kind: str
    name: str
    documentation: str
    pieces: list[Packed]  # never changed once the rendering is made


@dataclass(frozen=True, slots=True)
class Rendered:
    """A snapshot and its exposition: the same pieces serve both formats, only the family
    headers differ."""

    snapshot: Snapshot
    sections: tuple[Section, ...]
    pieces_size: int  # bytes of every section's pieces' text

    def chunks(self, fmt: Format) -> Iterator[bytes]:
        """The body in ``fmt`` (without the live part) as text, a few pieces at a time."""
        for section in self.sections:
            yield header(section.kind, section.name, section.documentation, fmt)
            yield from batched(piece.text() for piece in section.pieces)

    def size(self, fmt: Format) -> int:
        """The length of ``chunks(fmt)`` altogether."""
        headers = (header(s.kind, s.name, s.documentation, fmt) for s in self.sections)
        return self.pieces_size + sum(len(h) for h in headers)

    def compress(self, fmt: Format, previous: Compressed | None = None) -> Compressed:
        """The gzip stream of the body in ``fmt`` but its end, recompressing only what
        changed since ``previous`` (zlib releases the GIL: run it in a thread)."""
        return compress(
            ((s.name, header(s.kind, s.name, s.documentation, fmt), s.pieces)
             for s in self.sections),
            previous,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _UsageLines:
    """One project's servers-per-image lines, kept with the counts they show."""

    listed: bool
    in_use: tuple[ImageUse, ...]
    idle: tuple[str, ...]
    piece: Packed | None

    def shows(self, usage: UsageState) -> bool:
        """Whether these lines are still ``usage``'s (each sweep makes new, equal tuples)."""
        return (
            self.listed is (usage.last_success is not None)
            and self.in_use == usage.in_use
            and self.idle == usage.idle
        )


@dataclass(frozen=True, slots=True)
class _LatestLines:
    """One project's last-job lines (each family's piece), kept with the sub-jobs they show."""

    latest: tuple[SubJob, ...]
    pieces: tuple[Packed | None, ...]


@dataclass(slots=True)
class Kept:
    """What one rendering hands to the next: its blocks of targets' lines, by their first
    target, and each project's dev-server usage lines and last-job lines (of current
    projects only)."""

    blocks: dict[TargetKey, Block] = field(default_factory=dict)
    usage: dict[str, _UsageLines] = field(default_factory=dict)
    latest: dict[str, _LatestLines] = field(default_factory=dict)


class _Renderer:
    """Renders one snapshot: ``steps()`` does the work in slices, ``result()`` packs it up.

    Lines are reused from ``previous`` where they still hold; the lines of this rendering
    are left in ``kept`` for the next one.
    """

    def __init__(
        self, snapshot: Snapshot, previous: Kept | None = None, select: Selection = ALL
    ) -> None:
        self._snapshot = snapshot
        self._select = select
        self._collector = SnapshotCollector(snapshot)
        self._previous = previous or Kept()
        self.kept = Kept()
        self._families: list[Metric] = []
        self._pieces: list[list[Packed]] = []
        self._size = 0

    def _add(self, families: list[Metric], pieces: list[list[Packed]]) -> None:
        """Add the kept ones of these families to the rendering."""
        for family, family_pieces in zip(families, pieces, strict=True):
            if self._select.keeps(family.name, family.type):
                self._families.append(family)
                self._pieces.append(family_pieces)

    def _blocks(self) -> Iterator[None]:
        """The object families and the per-target families, a block of targets at a time
        (``exporter.exposition.blocks``): a block whose targets show what they showed is
        taken from the previous rendering, and only its last success lines are written."""
        cloud = list(self._collector.cloud_families(()))  # their headers
        targets = list(self._collector.target_families(()))
        families = cloud + targets
        keeps = [self._select.keeps(f.name, f.type) for f in families]
        writer = BlockWriter(cloud, targets, keeps)
        pieces: list[list[Packed]] = [[] for _ in families]
        success = len(cloud) + 2  # the one family a block does not keep
        states = self._snapshot.targets
        work = 0
        for part, old in blocks(states, self._previous.blocks):
            if old is None:
                block = writer.block(part)
                work += len(part)
            else:  # held with this snapshot's states, so that no earlier ones stay alive
                block = Block(tuple(part), old.pieces, old.closed)
                work += len(part) // 20
            self.kept.blocks[part[0].key] = block
            kept = list(block.pieces)
            kept.insert(success, writer.successes(block, part))
            for family_pieces, piece in zip(pieces, kept, strict=True):
                if piece is not None:
                    family_pieces.append(piece)
            if work >= WORK:
                work = 0
                yield
        if not keeps[len(cloud)]:  # the up lines, written for the others' sake
            pieces[len(cloud)] = []
        self._add(families, pieces)

    def steps(self) -> Iterator[None]:
        """Render slice by slice, yielding between slices."""
        yield from self._blocks()
        latest: dict[str, list[Packed]] = {}
        yield from self._latest(latest)
        for family in self._collector.summary_families(latest=False):
            if not self._select.keeps(family.name, family.type):
                continue
            if family.name in latest:
                self._add([family], [latest[family.name]])
                continue
            piece = _lines([family])
            self._add([family], [[piece] if piece is not None else []])
            yield  # with 100 projects, the sweep and job families are thousands of lines
        yield from self._usage()
        yield from self._running()
        for pieces in self._pieces:
            for start in range(0, len(pieces), WORK * 100):
                self._size += sum(p.size for p in pieces[start : start + WORK * 100])
                yield

    def _latest(self, out: dict[str, list[Packed]]) -> Iterator[None]:
        """Into ``out``, the pieces of the last-job families by name, one a project: kept
        from the previous rendering while the project's latest sub-jobs hold (a fleet's
        every image server may have one, and they seldom change), yielding after every few
        projects written."""
        headers = list(self._collector.latest_families(()))
        keeps = [self._select.keeps(f.name, f.type) for f in headers]
        columns: list[list[Packed]] = [[] for _ in headers]
        written = 0
        for j in self._snapshot.jobs:
            if j.last_success is None:
                continue  # never read: nothing to say about its jobs
            lines = self._previous.latest.get(j.project_id)
            if lines is None or lines.latest != j.latest:
                families = self._collector.latest_families((j,))
                pieces = tuple(
                    _lines([f]) if keep else None for f, keep in zip(families, keeps, strict=True)
                )  # a dropped family is not written
                lines = _LatestLines(j.latest, pieces)
                written += len(j.latest)
            self.kept.latest[j.project_id] = lines
            for column, piece in zip(columns, lines.pieces, strict=True):
                if piece is not None:
                    column.append(piece)
            if written >= WORK * 5:
                written = 0
                yield
        out.update(zip((f.name for f in headers), columns, strict=True))

    def _usage(self) -> Iterator[None]:
        """The servers-per-image family, one piece per project: kept from the previous
        rendering while the project's counts hold, else written again, yielding after every
        few projects written (each project's images are its series)."""
        [header] = self._collector.usage_families(())
        if not self._select.keeps(header.name, header.type):
            return
        pieces: list[Packed] = []
        written = 0
        for n, u in enumerate(self._snapshot.usage):
            lines = self._previous.usage.get(u.project_id)
            if lines is None or not lines.shows(u):
                piece = _lines(self._collector.usage_families((u,)))
                lines = _UsageLines(u.last_success is not None, u.in_use, u.idle, piece)
                written += len(u.in_use) + len(u.idle)
            self.kept.usage[u.project_id] = lines
            if lines.piece is not None:
                pieces.append(lines.piece)
            if written >= WORK * 5 or n % WORK == WORK - 1:
                written = 0
                yield
        self._add([header], [pieces])

    def _running(self) -> Iterator[None]:
        """When each running job began, a few projects at a time (120,000 of these series
        in one block held the loop for half a second)."""
        [header] = self._collector.running_families(())
        if not self._select.keeps(header.name, header.type):
            return
        pieces: list[Packed] = []
        written = 0
        jobs = self._snapshot.jobs
        for n, j in enumerate(jobs):
            piece = _lines(self._collector.running_families((j,)))
            if piece is not None:
                pieces.append(piece)
            written += len(j.started)
            if written >= WORK * 5 or n == len(jobs) - 1:
                written = 0
                yield
        self._add([header], [pieces])

    def result(self) -> Rendered:
        """The rendering, its sections in the order prometheus_client writes them."""
        sections = tuple(
            Section(f.type, f.name, f.documentation, p)
            for f, p in zip(self._families, self._pieces, strict=True)
        )
        return Rendered(self._snapshot, sections, self._size)


def _lines(families: Iterable[Metric]) -> Packed | None:
    """The sample lines of ``families``, deflated as one piece (None when they have none)."""
    text: list[str] = []
    for family in families:
        sample_lines(family, text)
    return pack("".join(text).encode()) if text else None


def render(snapshot: Snapshot, select: Selection = ALL) -> Rendered:
    """Render a snapshot all at once (start-up, tests), only the families ``select``
    keeps."""
    renderer = _Renderer(snapshot, select=select)
    for _ in renderer.steps():
        pass
    return renderer.result()


async def render_async(
    snapshot: Snapshot, previous: Kept | None = None, select: Selection = ALL
) -> tuple[Rendered, Kept]:
    """Render a snapshot without stalling the event loop, in slices, only the families
    ``select`` keeps.

    Returns the rendering and the lines to pass to the next call (made with the same
    ``select``)."""
    renderer = _Renderer(snapshot, previous, select)
    for _ in renderer.steps():
        await asyncio.sleep(0)
    return renderer.result(), renderer.kept
