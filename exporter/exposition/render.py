"""A snapshot rendered once, as bytes shared with the previous rendering wherever they agree.

Rendering every target on every scrape would make scrape cost grow with the number of
targets, so the snapshot's families are rendered once, when a cycle publishes. As in
kube-state-metrics, each target keeps its rendered lines (bytes) between renderings: the
lines of an object that did not change, and its per-target lines whose value did not
change, are the very same bytes objects as last time; so are a project's dev-server usage
lines while its counts hold. A rendering is a list of sections, each a family header and
the pieces of its body; it is never joined into one copy, which at 100,000 objects would
be a further 230 MB beside the pieces it repeats.

Rendering runs in the event loop in slices of targets, yielding between slices: a worker
thread would hold the GIL for seconds with 100,000 targets and stall the loop in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from exporter.domain.state import CloudObject, Snapshot
from exporter.domain.targets import TargetKey
from exporter.domain.usage import ImageUse, UsageState
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.deflate import GROUP, Compressed, compress
from exporter.exposition.objects import ObjectLines
from exporter.exposition.selection import ALL, Selection
from exporter.exposition.textformat import Format, escape, header, sample_lines

SLICE = 200  # targets rendered between two yields to the event loop (about 10 ms of work)


@dataclass(frozen=True, slots=True)
class Section:
    """One family: what its header is made of, and its sample lines in pieces."""

    kind: str
    name: str
    documentation: str
    pieces: list[bytes]  # never changed once the rendering is made


@dataclass(frozen=True, slots=True)
class Rendered:
    """A snapshot and its exposition: the same pieces serve both formats, only the family
    headers differ."""

    snapshot: Snapshot
    sections: tuple[Section, ...]
    pieces_size: int  # bytes of every section's pieces

    def chunks(self, fmt: Format) -> Iterator[bytes]:
        """The body in ``fmt`` (without the live part), pieces joined a group at a time."""
        for section in self.sections:
            yield header(section.kind, section.name, section.documentation, fmt)
            pieces = section.pieces
            for start in range(0, len(pieces), GROUP):
                yield b"".join(pieces[start : start + GROUP])

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


class _Lines:
    """One target's rendered lines, each kept with what it shows, so that it is written
    again only when that changes (mutable: one object per target for the process's life).
    The last success time changes every cycle: its lines are written a slice at a time,
    and not kept here."""

    __slots__ = ("cloud", "exists", "exists_line", "obj", "since", "since_line", "up", "up_line")

    def __init__(self) -> None:
        self.obj: CloudObject | None = None
        self.cloud: tuple[bytes, ...] = ()  # one piece per cloud family, b"" for none
        self.up: bool | None = None
        self.up_line = b""
        self.exists: bool | None = None
        self.exists_line = b""
        self.since: float | None = None
        self.since_line = b""


@dataclass(frozen=True, slots=True)
class _UsageLines:
    """One project's servers-per-image lines, kept with the counts they show."""

    listed: bool
    in_use: tuple[ImageUse, ...]
    idle: tuple[str, ...]
    piece: bytes

    def shows(self, usage: UsageState) -> bool:
        """Whether these lines are still ``usage``'s (each sweep makes new, equal tuples)."""
        return (
            self.listed is (usage.last_success is not None)
            and self.in_use == usage.in_use
            and self.idle == usage.idle
        )


@dataclass(slots=True)
class Kept:
    """What one rendering hands to the next: each target's lines, and each project's
    dev-server usage lines (of current targets and projects only)."""

    objects: dict[TargetKey, _Lines] = field(default_factory=dict)
    usage: dict[str, _UsageLines] = field(default_factory=dict)


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
        self._entries: list[_Lines] = []  # each target's, in the snapshot's order
        self._families: list[Metric] = []
        self._pieces: list[list[bytes]] = []
        self._size = 0

    def _add(self, families: list[Metric], pieces: list[list[bytes]]) -> None:
        """Add the kept ones of these families to the rendering."""
        for family, family_pieces in zip(families, pieces, strict=True):
            if self._select.keeps(family.name, family.type):
                self._families.append(family)
                self._pieces.append(family_pieces)

    def _cloud(self) -> Iterator[None]:
        families = list(self._collector.cloud_families(()))  # their headers
        writer = ObjectLines(families)
        pieces: list[list[bytes]] = [[] for _ in families]
        targets = self._snapshot.targets
        for start in range(0, len(targets), SLICE):
            part = targets[start : start + SLICE]
            entries = []
            for state in part:
                entry = self._previous.objects.get(state.key)
                if entry is None:
                    entry = _Lines()
                if not entry.cloud or (entry.obj is not state.obj and entry.obj != state.obj):
                    entry.obj = state.obj
                    entry.cloud = writer.lines(state.key, state.obj)
                self.kept.objects[state.key] = entry
                entries.append(entry)
            for entry in entries:
                for family_pieces, piece in zip(pieces, entry.cloud, strict=True):
                    if piece:
                        family_pieces.append(piece)
            self._entries += entries
            yield
        self._add(families, pieces)

    def _targets(self) -> Iterator[None]:
        """The per-target families, written directly: building prometheus_client families
        for them costs several times more than the lines themselves. A line is written
        again only when its value changed; the last success times, which change every
        cycle, are written a slice at a time into one piece. The tests hold the result
        byte-identical to prometheus_client's."""
        families = list(self._collector.target_families(()))  # their headers
        names = [f.name for f in families]
        # A dropped family's lines are not written (the up lines are: the others use them).
        _, keep_exists, keep_success, keep_since = (self._select.keeps(n) for n in names)
        pieces: list[list[bytes]] = [[] for _ in families]
        up, exists, success, since = pieces
        values: dict[float, bytes] = {}  # most targets share a few timestamps
        # A target's labels are those of its target_up line, between the name and the value:
        # its other lines take them from there rather than write them again.
        after_name = len(names[0])
        exists_name, success_name, since_name = (n.encode() for n in names[1:])
        fresh: list[bytes] = []

        def text(value: float) -> bytes:
            found = values.get(value)
            if found is None:
                found = values[value] = floatToGoString(value).encode()  # type: ignore[no-untyped-call]
            return found

        def line(name: bytes, up_line: bytes, value: float) -> bytes:
            # The labels and the space after them: the up line less "1.0\n" or "0.0\n".
            return name + up_line[after_name:-4] + text(value) + b"\n"

        targets = self._snapshot.targets
        for n, (t, e) in enumerate(zip(targets, self._entries, strict=True)):
            if e.up is not t.up:
                value = "1.0" if t.up else "0.0"
                e.up, e.up_line = t.up, f"{names[0]}{_target_labels(t.key)} {value}\n".encode()
            up.append(e.up_line)
            if keep_exists and t.exists is not None:
                if e.exists is not t.exists:
                    e.exists = t.exists
                    e.exists_line = line(exists_name, e.up_line, float(t.exists))
                exists.append(e.exists_line)
            if keep_success and t.last_success is not None:
                fresh += (success_name, e.up_line[after_name:-4], text(t.last_success), b"\n")
            if keep_since and t.status_since is not None:
                if e.since != t.status_since:
                    e.since, e.since_line = (
                        t.status_since,
                        line(since_name, e.up_line, t.status_since),
                    )
                since.append(e.since_line)
            if n % SLICE == SLICE - 1 or n == len(targets) - 1:
                if fresh:
                    success.append(b"".join(fresh))
                    fresh = []
                yield
        self._add(families, pieces)

    def steps(self) -> Iterator[None]:
        """Render slice by slice, yielding between slices."""
        yield from self._cloud()
        yield from self._targets()
        for family in self._collector.summary_families():
            if not self._select.keeps(family.name, family.type):
                continue
            lines: list[str] = []
            sample_lines(family, lines)
            self._add([family], [["".join(lines).encode()] if lines else []])
            yield  # with 100 projects, the sweep and job families are thousands of lines
        yield from self._usage()
        yield from self._running()
        for pieces in self._pieces:
            for start in range(0, len(pieces), SLICE * 100):
                self._size += sum(map(len, pieces[start : start + SLICE * 100]))
                yield

    def _usage(self) -> Iterator[None]:
        """The servers-per-image family, one piece per project: kept from the previous
        rendering while the project's counts hold, else written again, yielding after every
        few projects written (each project's images are its series)."""
        [header] = self._collector.usage_families(())
        if not self._select.keeps(header.name, header.type):
            return
        pieces: list[bytes] = []
        written = 0
        for n, u in enumerate(self._snapshot.usage):
            lines = self._previous.usage.get(u.project_id)
            if lines is None or not lines.shows(u):
                text: list[str] = []
                for family in self._collector.usage_families((u,)):
                    sample_lines(family, text)
                listed = u.last_success is not None
                lines = _UsageLines(listed, u.in_use, u.idle, "".join(text).encode())
                written += len(u.in_use) + len(u.idle)
            self.kept.usage[u.project_id] = lines
            if lines.piece:
                pieces.append(lines.piece)
            if written >= SLICE * 5 or n % SLICE == SLICE - 1:
                written = 0
                yield
        self._add([header], [pieces])

    def _running(self) -> Iterator[None]:
        """When each running job began, a few projects at a time (120,000 of these series
        in one block held the loop for half a second)."""
        [header] = self._collector.running_families(())
        if not self._select.keeps(header.name, header.type):
            return
        pieces: list[bytes] = []
        written = 0
        jobs = self._snapshot.jobs
        for n, j in enumerate(jobs):
            text: list[str] = []
            for family in self._collector.running_families((j,)):
                sample_lines(family, text)
            if text:
                pieces.append("".join(text).encode())
            written += len(j.started)
            if written >= SLICE * 5 or n == len(jobs) - 1:
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


def _target_labels(key: TargetKey) -> str:
    """``{id="…",project_id="…",resource="…"}``: label names sorted, as prometheus_client
    writes them."""
    return (
        f'{{id="{escape(key.id)}",project_id="{escape(key.project_id)}",'
        f'resource="{key.resource.value}"}}'
    )


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
