"""The per-target lines (each object's own families, and the exporter's per-target families),
rendered and kept in blocks of consecutive targets.

A block holds one piece per family, its targets' lines joined, and is taken as it is from
the previous rendering while every one of its targets shows what it showed: a warm cycle at
100,000 objects then handles a few hundred blocks rather than 1.6 million lines, and the
body is held once, as the blocks' pieces (keeping each target's lines as well cost a
further 70 MB of small objects). Only the last success times, which change every cycle, are
written again every time, a block at a time from its up lines.

Where a block ends is decided by its targets' IDs (a cut after an ID whose hash is a
multiple of BLOCK), not by positions, so that a target added or gone changes the block it
is in and no other. A block whose lines changed is written again whole, with the direct
writer (``exporter.exposition.objects``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from prometheus_client.metrics_core import Metric

from exporter.domain.state import TargetState
from exporter.domain.targets import TargetKey
from exporter.exposition.deflate import Packed, pack
from exporter.exposition.objects import ObjectLines
from exporter.exposition.textformat import escape, number

BLOCK = 256  # targets a block holds on average (a power of two)
MAX_BLOCK = 4 * BLOCK  # and at most, whatever the IDs
WORK = 200  # targets written (or 20 times as many checked) between two yields


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive targets' lines: one piece per family, deflated (cloud families, then up,
    exists and since; None for none or a dropped family), and the states they show."""

    states: tuple[TargetState, ...]
    pieces: tuple[Packed | None, ...]
    closed: bool  # ended by a cut, not by the end of the targets

    def shows(self, states: Sequence[TargetState]) -> bool:
        """Whether these lines are still those of ``states`` (the last success aside)."""
        if len(states) != len(self.states):
            return False
        for old, new in zip(self.states, states, strict=True):
            if not (
                (old.key is new.key or old.key == new.key)
                and (old.obj is new.obj or old.obj == new.obj)
                and old.up is new.up
                and old.exists is new.exists
                and old.status_since == new.status_since
            ):
                return False
        return True


def blocks(
    states: Sequence[TargetState], previous: Mapping[TargetKey, Block]
) -> Iterator[tuple[Sequence[TargetState], Block | None]]:
    """The blocks of ``states``, each with the previous rendering's block of the same
    targets when it still shows them, else None.

    A block ends after an ID whose hash is a multiple of BLOCK, or at MAX_BLOCK targets, so
    where it ends depends on its own IDs only: a previous block that showed the same
    targets ends where they would be cut now, and is taken without hashing them again."""
    start, total = 0, len(states)
    while start < total:
        old = previous.get(states[start].key)
        if old is not None:
            end = start + len(old.states)
            if (old.closed or end == total) and end <= total and old.shows(states[start:end]):
                yield states[start:end], old
                start = end
                continue
        end = _cut(states, start)
        yield states[start:end], None
        start = end


def _cut(states: Sequence[TargetState], start: int) -> int:
    """Where the block that starts at ``start`` ends."""
    mask = BLOCK - 1
    for n in range(start, min(start + MAX_BLOCK, len(states))):
        if hash(states[n].key.id) & mask == 0:
            return n + 1
    return min(start + MAX_BLOCK, len(states))


class BlockWriter:
    """Writes blocks, given the families' headers (the cloud families, then the target
    families: up, exists, last success, since) and which of them are kept."""

    def __init__(
        self, cloud: Sequence[Metric], targets: Sequence[Metric], keeps: Sequence[bool]
    ) -> None:
        self._objects = ObjectLines(cloud)
        self._cloud = len(cloud)
        self._keeps = tuple(keeps)
        up, exists, success, since = (f.name for f in targets)
        self._up = up
        self._after = len(up)  # a target's labels follow its up line's name
        self._exists, self._success, self._since = (n.encode() for n in (exists, success, since))
        self._texts: dict[float, bytes] = {}  # most targets share a few timestamps

    def text(self, value: float) -> bytes:
        """A sample value as prometheus_client writes it."""
        found = self._texts.get(value)
        if found is None:
            if len(self._texts) > 4096:  # configured targets each have their own
                self._texts.clear()
            found = self._texts[value] = number(value).encode()
        return found

    def block(self, states: Sequence[TargetState]) -> Block:
        """The lines of ``states``, written afresh."""
        keeps = self._keeps
        columns: list[list[bytes]] = [[] for _ in range(self._cloud)]
        up: list[bytes] = []
        exists: list[bytes] = []
        since: list[bytes] = []
        for t in states:
            for column, piece in zip(columns, self._objects.lines(t.key, t.obj), strict=True):
                column.append(piece)
            up_line = f"{self._up}{_target_labels(t.key)} {'1.0' if t.up else '0.0'}\n".encode()
            up.append(up_line)
            labels = up_line[self._after : -4]  # and the space after them
            if t.exists is not None:
                exists.append(self._exists + labels + self.text(float(t.exists)) + b"\n")
            if t.status_since is not None:
                since.append(self._since + labels + self.text(t.status_since) + b"\n")
        kept = [*keeps[: self._cloud], True, keeps[self._cloud + 1], keeps[self._cloud + 3]]
        # The up lines are kept whatever is dropped: the success lines take their labels.
        pieces = [
            _packed(c) if k else None
            for c, k in zip([*columns, up, exists, since], kept, strict=True)
        ]
        end = states[-1]
        closed = len(states) == MAX_BLOCK or hash(end.key.id) & (BLOCK - 1) == 0
        return Block(tuple(states), tuple(pieces), closed)

    def successes(self, block: Block, states: Sequence[TargetState]) -> Packed | None:
        """The last success lines of ``states``, whose block this is (None when that family
        is dropped or has none)."""
        up = block.pieces[self._cloud]
        if not self._keeps[self._cloud + 2] or up is None:
            return None
        after, name = self._after, self._success
        labels = [line[after:-3] for line in up.text().split(b"\n")[:-1]]
        out: list[bytes] = []
        start = 0
        # Each sweep's targets share one answer time: one join writes each run of them.
        for value, run in groupby(t.last_success for t in states):
            end = start + sum(1 for _ in run)
            if value is not None:
                line_end = self.text(value) + b"\n"
                out += (name, (line_end + name).join(labels[start:end]), line_end)
            start = end
        return _packed(out)


def _packed(pieces: list[bytes]) -> Packed | None:
    text = b"".join(pieces)
    return pack(text) if text else None


def _target_labels(key: TargetKey) -> str:
    """``{id="…",project_id="…",resource="…"}``: label names sorted, as prometheus_client
    writes them."""
    return (
        f'{{id="{escape(key.id)}",project_id="{escape(key.project_id)}",'
        f'resource="{key.resource.value}"}}'
    )
