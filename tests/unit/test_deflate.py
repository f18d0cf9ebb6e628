"""The gzip stream made of separately deflated groups: one gzip member that any reader
decompresses to exactly the plain body, whatever changed between renderings; unchanged
groups taken as they are; and nearly as small as compressing it all at once."""

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
from tests.unit.test_exposition import snapshots


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
    """Each rendering compressed from the previous one's stream, in small blocks and
    groups so that small snapshots have many."""
    original = deflate.MIN_GROUP, deflate.MAX_GROUP, blocks.BLOCK, blocks.MAX_BLOCK
    deflate.MIN_GROUP, deflate.MAX_GROUP, blocks.BLOCK, blocks.MAX_BLOCK = 1, 4000, 2, 3
    try:
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
    finally:
        deflate.MIN_GROUP, deflate.MAX_GROUP, blocks.BLOCK, blocks.MAX_BLOCK = original


def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of about 8 targets, and groups of about 2 blocks, for a small fleet."""
    monkeypatch.setattr(deflate, "MIN_GROUP", 2000)
    monkeypatch.setattr(deflate, "CUT", 2)
    monkeypatch.setattr(blocks, "BLOCK", 8)


def _datas(compressed: deflate.Compressed) -> set[int]:
    """The identities of a stream's deflated groups (a group taken as it is keeps them)."""
    return {id(g.data) for g in compressed.groups.values()}


SUCCESS = "huaweicloud_image_exporter_target_last_success_timestamp_seconds"


def test_only_changed_groups_are_compressed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    small(monkeypatch)
    first = fleet(3 * 64, 1.7e9)
    rendered, kept = asyncio.run(render_async(first))
    before = rendered.compress(Format.TEXT)
    again, _ = asyncio.run(render_async(next_cycle(first, 0), kept))
    after = again.compress(Format.TEXT, before)
    names = [name for name, _ in after.groups]
    assert all(names.count(s.name) > 3 for s in again.sections[:7] if s.pieces)
    fresh = {name for name, g in after.groups.items() if id(g.data) not in _datas(before)}
    assert fresh and {name for name, _ in fresh} == {SUCCESS}
    assert gzip.decompress(whole(after, b"")) == b"".join(again.chunks(Format.TEXT))
    # Nothing of the previous rendering is held by the new stream.
    pieces = {id(p) for s in again.sections for p in s.pieces}
    assert all(id(p) in pieces for g in after.groups.values() for p in g.parts)


def test_a_target_gone_changes_its_own_block_and_groups_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blocks and groups end where their contents say, not at positions: a target gone
    from the middle leaves every other block, and every group but its own, as it was."""
    small(monkeypatch)
    first = fleet(3 * 64, 1.7e9)
    rendered, kept = asyncio.run(render_async(first))
    before = rendered.compress(Format.TEXT)
    targets = first.targets
    gone = replace(first, targets=targets[:100] + targets[101:])
    again, after_kept = asyncio.run(render_async(gone, kept))
    after = again.compress(Format.TEXT, before)
    old = {id(b.pieces) for b in kept.blocks.values()}
    written = [b for b in after_kept.blocks.values() if id(b.pieces) not in old]
    assert len(written) == 1 and len(after_kept.blocks) >= 3 * 64 // 8 // 2
    fresh = {name for name, g in after.groups.items() if id(g.data) not in _datas(before)}
    per_family = {name for name, _ in fresh}
    assert len(fresh) <= 3 * len(per_family), fresh  # a group or two each, not all after it
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
