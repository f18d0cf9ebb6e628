"""The fast exposition writer against prometheus_client's own, byte for byte."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter.domain.health import Health
from exporter.domain.jobs import JobsState, SubJob
from exporter.domain.state import DevServerImage, ImageServer, Snapshot, TargetState
from exporter.domain.targets import Resource, TargetKey
from exporter.domain.usage import ImageUse, UsageState
from exporter.exposition import blocks
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.deflate import Packed
from exporter.exposition.render import Kept, Rendered, render, render_async
from exporter.exposition.store import Exposition
from exporter.exposition.textformat import Format, encode
from exporter.web.negotiation import gzip_accepted, negotiate

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_stamp = st.one_of(st.none(), st.floats(min_value=0, max_value=4e9, allow_nan=False))
_status = st.sampled_from(["ACTIVE", "INACTIVE", "ERROR", "NULL", "BUILDING", 'Wëird "one"\n'])
_objects = st.one_of(
    st.none(),
    st.builds(DevServerImage, _text, _text, _text, _status),
    st.builds(
        ImageServer, _text, _text, _text, _text, _text, _text, _text, _text, _status, _stamp, _stamp,
        st.lists(st.tuples(_text, st.integers(0, 5)), max_size=3).map(tuple),
    ),
)  # fmt: skip


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    states = []
    for n in range(draw(st.integers(0, 9))):
        obj = draw(_objects)
        resource = (
            Resource.IMAGE_SERVER if isinstance(obj, ImageServer) else Resource.DEVSERVER_IMAGE
        )
        key = TargetKey(resource, draw(st.sampled_from(["p1", "p-2"])), f"id-{n}")
        up = draw(st.booleans())
        exists = None if obj is None and not up else obj is not None
        health = Health(up, draw(_stamp))
        states.append(TargetState(key, health, exists, obj, draw(_stamp)))
    interval = draw(st.sampled_from([1.0, 60.0, 2.5]))
    jobs = {j.project_id: j for j in draw(st.lists(_jobs, max_size=3))}  # one a project
    return Snapshot(tuple(states), {Resource.IMAGE_SERVER: 3}, interval, draw(_stamp), draw(_stamp),
                    jobs=tuple(jobs.values()),
                    usage=tuple(draw(st.lists(_usage, max_size=4))))  # fmt: skip


_sub_job = st.builds(
    SubJob, _text, _text, st.sampled_from(["CREATE_IMAGE", "other"]), _text, _text,
    st.sampled_from(["SUCCESS", "FAILED", "RUNNING"]), _text, _text, _stamp, _stamp,
)  # fmt: skip
# Sub-jobs drawn from a few, so that two snapshots often share a project's latest ones.
_jobs = st.builds(
    JobsState, st.sampled_from(["p1", "p-2", 'p"3']),
    st.builds(Health, st.booleans(), _stamp),
    latest=st.lists(st.sampled_from([
        SubJob("s1", "j1", "CREATE_IMAGE", "srv-1", "n", "SUCCESS", "", "", 1.0, 2.0),
        SubJob("s2", "j2", "CREATE_IMAGE", 'srv-"2', "n", "FAILED", "E.1", "", 1.0, None),
    ]) | _sub_job, max_size=3).map(tuple),
)  # fmt: skip
_image_use = st.builds(
    ImageUse, _text, st.lists(st.tuples(_status, st.integers(1, 9)), max_size=3).map(tuple),
    st.booleans(),
)  # fmt: skip
_usage = st.builds(
    UsageState, st.sampled_from(["p1", "p-2", 'p"3']), st.builds(Health, st.booleans(), _stamp),
    in_use=st.lists(_image_use, max_size=4).map(tuple),
    idle=st.lists(_text, max_size=3).map(tuple),
)  # fmt: skip


def reference(snapshot: Snapshot, fmt: Format) -> bytes:
    return encode(SnapshotCollector(snapshot), fmt)


@contextmanager
def tiny_blocks() -> Iterator[None]:
    """Blocks of one to three targets, so that small snapshots have several."""
    original = blocks.BLOCK, blocks.MAX_BLOCK
    blocks.BLOCK, blocks.MAX_BLOCK = 2, 3
    try:
        yield
    finally:
        blocks.BLOCK, blocks.MAX_BLOCK = original


def _keys(kept: Kept) -> set[TargetKey]:
    return {s.key for block in kept.blocks.values() for s in block.states}


@given(snap=snapshots())
def test_fast_writer_equals_prometheus_client(snap: Snapshot) -> None:
    with tiny_blocks():
        rendered = render(snap)
    assert b"".join(rendered.chunks(Format.TEXT)) == reference(snap, Format.TEXT)
    assert b"".join(rendered.chunks(Format.OPENMETRICS)) == reference(snap, Format.OPENMETRICS)


def test_async_render_equals_sync_render_with_many_slices() -> None:
    states = tuple(
        TargetState(TargetKey(Resource.DEVSERVER_IMAGE, "p", f"i{n}"), Health(True, 1.0 + n),
                    True, DevServerImage(f"n{n}", "ARM", "BMS", "ACTIVE"), 2.0)
        for n in range(blocks.WORK * 3 + 7)
    )  # fmt: skip
    snap = Snapshot(states, {Resource.DEVSERVER_IMAGE: len(states)}, 60.0, 1.5, 3.0)
    rendered, lines = asyncio.run(render_async(snap))
    assert b"".join(rendered.chunks(Format.TEXT)) == reference(snap, Format.TEXT)
    assert b"".join(rendered.chunks(Format.OPENMETRICS)) == b"".join(
        render(snap).chunks(Format.OPENMETRICS)
    )
    assert _keys(lines) == {s.key for s in states}


@given(first=snapshots(), second=snapshots())
def test_reused_lines_render_exactly_the_next_snapshot(first: Snapshot, second: Snapshot) -> None:
    """Rendering with the previous render's lines equals rendering from scratch, whatever
    changed, was added or went away in between."""
    with tiny_blocks():
        _, lines = asyncio.run(render_async(first))
        again, kept = asyncio.run(render_async(second, lines))
    assert b"".join(again.chunks(Format.TEXT)) == reference(second, Format.TEXT)
    assert _keys(kept) == {s.key for s in second.targets}
    assert set(kept.usage) == {u.project_id for u in second.usage}


def test_unchanged_usage_is_not_written_again() -> None:
    """A project whose counts hold keeps its very bytes, though each sweep makes new tuples;
    a project whose counts changed is written again."""

    def usage(stamp: float, busy: int) -> tuple[UsageState, ...]:
        return tuple(
            UsageState(f"p{p}", Health(True, stamp), in_use=tuple(
                ImageUse(f"i{i}", (("RUNNING", busy if p == 0 else 2),), True) for i in range(3)
            ))
            for p in range(blocks.WORK + 3)
        )  # fmt: skip

    def pieces(rendered: Rendered) -> list[Packed]:
        [section] = [s for s in rendered.sections if s.name.endswith("image_servers")]
        return section.pieces

    first, kept = asyncio.run(render_async(Snapshot((), {}, 60.0, usage=usage(1.0, 1))))
    second = Snapshot((), {}, 60.0, usage=usage(2.0, 5))
    again, _ = asyncio.run(render_async(second, kept))
    assert b"".join(again.chunks(Format.TEXT)) == reference(second, Format.TEXT)
    before, after = pieces(first), pieces(again)
    assert after[0] != before[0]
    assert all(a is b for a, b in zip(after[1:], before[1:], strict=True))


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        (None, Format.TEXT),
        ("text/plain", Format.TEXT),
        ("application/openmetrics-text", Format.OPENMETRICS),
        (
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            Format.OPENMETRICS,
        ),
        ("text/plain;q=1,application/openmetrics-text;q=0.5", Format.TEXT),
        ("application/openmetrics-text;q=0", Format.TEXT),
        ("*/*", Format.TEXT),
    ],
)
def test_negotiate(accept: str | None, fmt: Format) -> None:
    assert negotiate(accept) is fmt


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        (None, False),
        ("br", False),
    ],
)
def test_gzip_accepted(header: str | None, ok: bool) -> None:
    assert gzip_accepted(header) is ok


def _served(states: int) -> Exposition:
    snap = Snapshot(
        tuple(
            TargetState(TargetKey(Resource.DEVSERVER_IMAGE, "p", f"i{n}"),
                        Health(True, 1.0 + n), True,
                        DevServerImage(f"n{n}", "ARM", "BMS", "ACTIVE"), 2.0)
            for n in range(states)
        ),
        {Resource.DEVSERVER_IMAGE: states}, 60.0, 1.5, 3.0,
    )  # fmt: skip
    return Exposition(CollectorRegistry(), snap)


async def test_gzip_is_made_once_and_only_for_formats_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Format] = []
    compress = Rendered.compress

    def counting(self: Rendered, fmt: Format, previous: Any = None) -> Any:
        made.append(fmt)
        return compress(self, fmt, previous)

    monkeypatch.setattr(Rendered, "compress", counting)
    store = _served(blocks.BLOCK * 8 + 5)
    bodies = await asyncio.gather(*(store.serve(Format.OPENMETRICS, True) for _ in range(5)))
    assert made == [Format.OPENMETRICS]  # five scrapes at once: one compression
    plain = b"".join(store.body(Format.OPENMETRICS, False))
    assert all(gzip.decompress(b"".join(b)) == plain for b in bodies)
    assert (
        len(b"".join(bodies[0])) == bodies[0].length
        and len(plain) == store.body(Format.OPENMETRICS, False).length
    )

    async def same(current: Snapshot) -> Snapshot:
        return replace(current, last_poll_timestamp=4.0)

    await store.update(same)  # the format asked for is ready before the new snapshot serves
    assert made == [Format.OPENMETRICS] * 2
    await store.serve(Format.OPENMETRICS, True)
    await store.serve(Format.TEXT, False)
    assert made == [Format.OPENMETRICS] * 2  # nothing more; plain text is never compressed


@pytest.mark.parametrize("change", ["appended", "last gone", "first gone"])
def test_blocks_taken_from_the_previous_rendering_end_where_fresh_ones_would(change: str) -> None:
    """A block that ended with the targets (not at a cut) is not taken as it is once more
    targets follow it: the blocks are those a fresh rendering makes, and so is the body."""
    states = tuple(
        TargetState(TargetKey(Resource.DEVSERVER_IMAGE, "p", f"i{n}"), Health(True, 1.0),
                    True, DevServerImage(f"n{n}", "ARM", "BMS", "ACTIVE"), 2.0)
        for n in range(40)
    )  # fmt: skip
    first, second = {
        "appended": (states[:30], states),
        "last gone": (states, states[:-1]),
        "first gone": (states, states[1:]),
    }[change]
    with tiny_blocks():
        _, kept = asyncio.run(render_async(Snapshot(first, {}, 60.0)))
        snap = Snapshot(second, {}, 60.0)
        again, reused = asyncio.run(render_async(snap, kept))
        _, fresh = asyncio.run(render_async(snap))
    assert b"".join(again.chunks(Format.TEXT)) == reference(snap, Format.TEXT)

    def cuts(k: Kept) -> list[tuple[str, ...]]:
        return [tuple(s.key.id for s in b.states) for b in k.blocks.values()]

    assert cuts(reused) == cuts(fresh)
    assert any(b.pieces is o.pieces for b in reused.blocks.values() for o in kept.blocks.values())
