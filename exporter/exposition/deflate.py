"""The gzip stream of a rendering, compressing only the parts that changed since the last.

Compressing the whole body again each cycle was half the CPU of a warm cycle at 100,000
objects, though nearly all of its lines are the same bytes as the cycle before. So, as
pigz does, the body is cut into groups (a family's header and some of its pieces: ``groups``),
each deflated on its own and ended with a sync flush, which ends on a byte boundary and
refers to nothing before it: any sequence of such groups, closed by one final block, is a
valid deflate stream. The groups are wrapped in one gzip member (a header, and a trailer
whose CRC is combined from the groups' CRCs), so every gzip reader reads it, not only those
that read concatenated members (curl does not). A group whose pieces are the very ones the
previous stream compressed is taken from it as it is.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from exporter.support.crc import combine, shift

# Level 1 compresses these repetitive bodies almost as well as 6 (0.43 vs 0.37 MB at 10,000
# targets) in a quarter of the time, and the time is spent every cycle.
LEVEL = 1
# A group ends after a piece whose length is a multiple of CUT once it holds MIN_GROUP
# bytes, or at MAX_GROUP bytes: decided by the pieces themselves, not by their positions, so
# that a piece added or gone changes the group it is in and few others.
CUT = 8
MIN_GROUP = 64 << 10
MAX_GROUP = 1 << 20
_RAW = -15  # raw deflate: the gzip header and trailer are written here
# ID1 ID2, deflate, no flags, no time, no extra flags, unknown OS (RFC 1952)
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def groups(pieces: list[bytes], head: int = 0) -> Iterator[tuple[int, int]]:
    """Where the groups of ``pieces`` (after a header of ``head`` bytes) start and end."""
    start, size = 0, head
    for n, piece in enumerate(pieces):
        size += len(piece)
        if (size >= MIN_GROUP and len(piece) % CUT == 0) or size >= MAX_GROUP:
            yield start, n + 1
            start, size = n + 1, 0
    if start < len(pieces) or not pieces:
        yield start, len(pieces)


def joined(pieces: list[bytes]) -> Iterator[bytes]:
    """``pieces`` joined a group at a time (few large writes, no whole copy)."""
    for start, end in groups(pieces):
        yield b"".join(pieces[start:end])


@dataclass(frozen=True, slots=True)
class Group:
    """One group deflated, with what it was made of, to tell whether it still holds."""

    head: bytes  # the family's header, in the first group of a family, else b""
    parts: tuple[bytes, ...]  # the pieces it holds
    data: bytes  # raw deflate, sync-flushed
    crc: int  # CRC-32 of the text
    op: int  # crc.shift of the text's length
    size: int  # bytes of text

    def holds(self, head: bytes, parts: list[bytes]) -> bool:
        """Whether this group's text is that of these pieces (compared by identity first,
        as tuple equality does, so unchanged pieces cost a pointer comparison)."""
        return head == self.head and self.parts == tuple(parts)


def _deflate(head: bytes, parts: list[bytes]) -> Group:
    text = head + b"".join(parts)
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW)
    data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Group(head, tuple(parts), data, zlib.crc32(text), shift(len(text)), len(text))


@dataclass(frozen=True, slots=True)
class Compressed:
    """A rendering's body, in one format, as deflated groups: all of a gzip stream but its
    end, which each scrape writes with its small live part (``finish``)."""

    groups: dict[tuple[str, int], Group]  # by family and place in it, in the body's order
    crc: int
    size: int
    length: int  # bytes of GZIP_HEADER and every group's data

    def chunks(self) -> Iterator[bytes]:
        """The stream so far."""
        yield GZIP_HEADER
        for group in self.groups.values():
            yield group.data

    def finish(self, tail: bytes) -> bytes:
        """The rest of the stream: ``tail`` deflated, the final block, and the trailer."""
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW)
        data = compressor.compress(tail) + compressor.flush()
        crc = combine(self.crc, zlib.crc32(tail), shift(len(tail)))
        return data + struct.pack("<II", crc, (self.size + len(tail)) & 0xFFFFFFFF)


def compress(
    families: Iterable[tuple[str, bytes, list[bytes]]], previous: Compressed | None = None
) -> Compressed:
    """The deflated groups of ``families`` (name, header, pieces), taking from
    ``previous`` each group whose text has not changed (zlib releases the GIL: run this in
    a thread)."""
    old = previous.groups if previous is not None else {}
    # A group is looked for by its first piece (which it keeps alive, so the identity is
    # not reused), found wherever it moved; else at its place, where its text may be the
    # same though made afresh (the summary families are).
    moved = {(name, id(g.parts[0])): g for (name, _), g in old.items() if g.parts}
    made: dict[tuple[str, int], Group] = {}
    crc, size, length = 0, 0, len(GZIP_HEADER)
    for name, header, pieces in families:
        for n, (start, end) in enumerate(groups(pieces, len(header))):
            head = header if start == 0 else b""
            parts = pieces[start:end]
            key = (name, n)
            group = moved.get((name, id(parts[0]))) if parts else None
            if group is None or not group.holds(head, parts):
                group = old.get(key)
            if group is None or not group.holds(head, parts):
                group = _deflate(head, parts)
            elif any(a is not b for a, b in zip(group.parts, parts, strict=True)):
                # Held with this rendering's pieces, so that no earlier rendering's stay alive.
                group = replace(group, parts=tuple(parts))
            made[key] = group
            crc = combine(crc, group.crc, group.op)
            size += group.size
            length += len(group.data)
    return Compressed(made, crc, size, length)
