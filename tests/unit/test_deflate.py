"""The gzip stream made of separately deflated groups: one gzip member that any reader
decompresses to exactly the plain body, whatever changed between renderings; unchanged
groups taken as they are; and nearly as small as compressing it all at once."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.selection import next_cycle
from bench.statefile import fleet
from exporter.domain.state import Snapshot
from exporter.exposition import deflate
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
    """Each rendering compressed from the previous one's stream, in groups of 2 pieces so
    that small snapshots have many."""
    original = deflate.GROUP
    deflate.GROUP = 2
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
        deflate.GROUP = original


def test_only_changed_groups_are_compressed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deflate, "GROUP", 64)
    first = fleet(3 * 64, 1.7e9)
    rendered, kept = asyncio.run(render_async(first))
    before = rendered.compress(Format.TEXT)
    again, _ = asyncio.run(render_async(next_cycle(first, 0), kept))
    after = again.compress(Format.TEXT, before)
    assert len(after.groups) > 3 * 10  # several groups of each object family
    fresh = {k for k, g in after.groups.items() if g.data is not before.groups[k].data}
    assert fresh == {("huaweicloud_image_exporter_target_last_success_timestamp_seconds", 0)}
    assert gzip.decompress(whole(after, b"")) == b"".join(again.chunks(Format.TEXT))
    # Nothing of the previous rendering is held by the new stream.
    assert all(any(g.pieces is s.pieces for s in again.sections) for g in after.groups.values())


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
