"""The body held as separately deflated pieces: one gzip member that any reader
decompresses to exactly the plain body, whatever changed between renderings; unchanged
pieces deflated once; and nearly as small as compressing it all at once."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.selection import next_cycle
from bench.statefile import fleet
from exporter.domain.state import Snapshot
from exporter.exposition import blocks, deflate
from exporter.exposition.render import Rendered, render_async
from exporter.exposition.textformat import Format
from exporter.support.crc import combine, shift
from tests.unit.test_exposition import snapshots, tiny_blocks


def one_member(stream: bytes) -> bytes:
    """The text of a stream that must be one gzip member and nothing after it (as readers
    that stop after the first member, such as curl, read it)."""
    reader = zlib.decompressobj(31)
    text = reader.decompress(stream) + reader.flush()
    assert reader.eof and reader.unused_data == b"", "not exactly one gzip member"
    return text


def whole(compressed: deflate.Compressed, tail: bytes) -> bytes:
    return b"".join(compressed.chunks()) + compressed.finish(tail)


@given(parts=st.lists(st.binary(max_size=3000), max_size=6))
def test_crcs_combine_as_of_the_concatenation(parts: list[bytes]) -> None:
    crc = 0
    for part in parts:
        crc = combine(crc, zlib.crc32(part), shift(len(part)))
    assert crc == zlib.crc32(b"".join(parts))


@settings(max_examples=60)
@given(sequence=st.lists(snapshots(), min_size=1, max_size=4), tail=st.binary(max_size=200))
def test_each_stream_of_a_sequence_is_one_member_of_the_plain_body(
    sequence: list[Snapshot], tail: bytes
) -> None:
    """Each rendering compressed from the previous one's stream, in blocks of a few targets
    so that small snapshots have many pieces."""
    with tiny_blocks():
        kept = None
        previous: dict[Format, deflate.Compressed | None] = dict.fromkeys(Format)
        for snap in sequence:
            rendered, kept = asyncio.run(render_async(snap, kept))
            for fmt in Format:
                made = rendered.compress(fmt, previous[fmt])
                plain = b"".join(rendered.chunks(fmt))
                assert one_member(whole(made, tail)) == plain + tail
                assert made.length + len(made.finish(tail)) == len(whole(made, tail))
                previous[fmt] = made


def _pieces(rendered: Rendered) -> dict[str, list[deflate.Packed]]:
    return {s.name: s.pieces for s in rendered.sections}


SUCCESS = "huaweicloud_image_exporter_target_last_success_timestamp_seconds"


def test_only_what_changed_is_compressed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quiet cycle writes and deflates the last success lines, and nothing else: every
    other piece is the very one deflated before, and so is each section's CRC."""
    monkeypatch.setattr(blocks, "BLOCK", 8)
    first = fleet(3 * 64, 1.7e9)
    rendered, kept = asyncio.run(render_async(first))
    before = rendered.compress(Format.TEXT)
    again, _ = asyncio.run(render_async(next_cycle(first, 0), kept))
    after = again.compress(Format.TEXT, before)
    old, new = _pieces(rendered), _pieces(again)
    assert sum(len(p) for p in new.values()) > 7 * 10  # many pieces
    fresh = {
        name for name, pieces in new.items()
        if any(a is not b for a, b in zip(pieces, old[name], strict=True))
    }  # fmt: skip
    summary = {name for name, pieces in new.items() if len(pieces) == 1}
    assert fresh - summary == {SUCCESS}
    folded = {name for name, (_, f) in after.sections.items() if f is before.sections[name][1]}
    assert {s.name for s in again.sections[:7] if s.pieces} <= folded
    assert gzip.decompress(whole(after, b"")) == b"".join(again.chunks(Format.TEXT))


def test_a_target_gone_changes_its_own_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks end where their targets' IDs say, not at positions: a target gone from the
    middle leaves every other block as it was."""
    monkeypatch.setattr(blocks, "BLOCK", 8)
    first = fleet(3 * 64, 1.7e9)
    rendered, kept = asyncio.run(render_async(first))
    targets = first.targets
    gone = replace(first, targets=targets[:100] + targets[101:])
    again, after_kept = asyncio.run(render_async(gone, kept))
    old = {id(b.pieces) for b in kept.blocks.values()}
    written = [b for b in after_kept.blocks.values() if id(b.pieces) not in old]
    assert len(written) == 1 and len(after_kept.blocks) >= 3 * 64 // 8 // 2
    after = again.compress(Format.TEXT, rendered.compress(Format.TEXT))
    assert gzip.decompress(whole(after, b"")) == b"".join(again.chunks(Format.TEXT))


def test_the_stream_is_within_ten_percent_of_one_shot_gzip() -> None:
    rendered, _ = asyncio.run(render_async(fleet(10_000, 1.7e9)))
    plain = b"".join(rendered.chunks(Format.TEXT))
    grouped = len(whole(rendered.compress(Format.TEXT), b""))
    one_shot = len(gzip.compress(plain, compresslevel=deflate.LEVEL))
    assert grouped <= one_shot * 1.10, (grouped, one_shot)


def test_a_large_random_tail_ends_the_stream() -> None:
    """The live part is not compressible, and bigger than a deflate block."""
    rendered: Rendered
    rendered, _ = asyncio.run(render_async(fleet(10, 1.7e9)))
    made = rendered.compress(Format.OPENMETRICS)
    tail = os.urandom(200_000)
    assert one_member(whole(made, tail)) == b"".join(rendered.chunks(Format.OPENMETRICS)) + tail
