"""The served state: the current snapshot, its rendering, and the bodies scrapes are sent.

The Exposition is the one owner of "the current snapshot". Whoever changes it (the poller
after a cycle, a reload) hands it a function from the current snapshot to the next; the
exposition applies it, renders, and swaps the rendering in with one assignment, all under
its own lock, so changes never interleave and scrapes only ever see whole snapshots.

A gzip stream is assembled only for a format somebody asks for: one Prometheus asks for
one format. The pieces are deflated once, when they are rendered; a stream is their data
with each family's header deflated and the CRCs folded, which the formats asked for since
the last snapshot have done as soon as the next is rendered, so that a scrape finds its
body ready.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client.registry import CollectorRegistry

from exporter.domain.state import Snapshot
from exporter.exposition.deflate import Compressed
from exporter.exposition.render import Kept, Rendered, render, render_async
from exporter.exposition.selection import ALL, Selected, Selection
from exporter.exposition.textformat import EOF_MARKER, Format, encode
from exporter.support.memory import malloc_trim

# A whole scrape body is reused for this long: the live part (process and API counters) is
# at most this old, and a burst of scrapes costs little more than sending the bytes.
LIVE_TTL = 1.0

# How often the objects frozen with each published snapshot are looked at again (see
# Exposition._collect): a full collection of 100,000 objects' state takes ~150 ms.
RECLAIM_EVERY = 3600.0

# Awaitable, so that a change over 100,000 objects can yield to the loop as it goes.
Change = Callable[[Snapshot], Awaitable[Snapshot]]


@dataclass(frozen=True, slots=True)
class Body:
    """One scrape's body: its length, and its chunks in order (iterable more than once)."""

    length: int
    rendered: Rendered
    fmt: Format
    gzip: Compressed | None
    tail: bytes  # the live part, compressed when the body is

    def __iter__(self) -> Iterator[bytes]:
        if self.gzip is not None:
            yield from self.gzip.chunks()
        else:
            yield from self.rendered.chunks(self.fmt)
        yield self.tail


class Exposition:
    """Holds the latest rendered snapshot and assembles scrape bodies.

    ``live`` is rendered at scrape time (at most once per LIVE_TTL) and appended after the
    pre-rendered snapshot part. Both parts serve only the families ``select`` keeps.
    """

    def __init__(
        self,
        live: CollectorRegistry,
        initial: Snapshot,
        *,
        reclaim_every: float = RECLAIM_EVERY,
        clock: Callable[[], float] = time.monotonic,
        select: Selection = ALL,
    ) -> None:
        self._live = Selected(live, select)
        self._select = select
        self._reclaim_every = reclaim_every
        self._clock = clock
        self._reclaimed = clock()
        self._current = render(initial, select)
        self._lock = asyncio.Lock()
        self._bodies: dict[tuple[Format, bool], tuple[float, Body]] = {}
        self._kept = Kept()
        # The current rendering's gzip streams, made or being made, by format.
        self._compressed: dict[Format, asyncio.Future[Compressed] | Compressed] = {}
        self._trim = malloc_trim()

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served."""
        return self._current.snapshot

    def refresh_live(self) -> None:
        """Render the live part afresh at the next scrape (after an event such as a reload)."""
        self._bodies.clear()

    async def update(self, change: Change) -> Snapshot:
        """Replace the snapshot by ``await change(current)``, render it and serve it.

        Updates run one at a time, each seeing the result of the one before; scrapes are
        served the previous rendering until this one is swapped in."""
        async with self._lock:
            snapshot = await change(self._current.snapshot)
            rendered, self._kept = await render_async(snapshot, self._kept, self._select)
            asked = list(self._compressed)
            ready = await asyncio.gather(
                *(asyncio.to_thread(rendered.compress, fmt, self._made(fmt)) for fmt in asked)
            )
            self._current, self._bodies = rendered, {}
            self._compressed = dict(zip(asked, ready, strict=True))
            self._collect()
            if self._trim is not None:  # the previous rendering's pages, given back
                await asyncio.to_thread(self._trim)
            return snapshot

    def _collect(self) -> None:
        """Collect the young objects, and move what survives out of the collector's
        generations: at 100,000 objects the state is millions of objects, and each
        automatic full collection scanning them all stalled the loop for 150 ms.

        The state holds no reference cycles, but whatever else is alive at that moment is
        frozen with it: a keep-alive connection (an HTTP client's, or the client pool's to
        the cloud) is a reference cycle that, once closed, only a full collection can free,
        and a frozen one is never looked at again (1.2 KB each; 20,000 scrapers' leaked
        23 MB). So every RECLAIM_EVERY the frozen objects are unfrozen and everything is
        collected once: one full collection an hour bounds what freezing can keep."""
        now = self._clock()
        if now - self._reclaimed >= self._reclaim_every:
            self._reclaimed = now
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()

    def _made(self, fmt: Format) -> Compressed | None:
        """The current rendering's gzip stream in ``fmt``, if made: the next is made from
        it, recompressing only what changed."""
        made = self._compressed.get(fmt)
        return made if isinstance(made, Compressed) else None

    async def serve(self, fmt: Format, gzip: bool) -> Body:
        """One scrape's body; a gzip stream not made yet is made in a thread, once, however
        many scrapes wait for it."""
        if gzip:
            made = self._compressed.get(fmt)
            if made is None:
                rendered = self._current
                made = asyncio.ensure_future(asyncio.to_thread(rendered.compress, fmt))
                self._compressed[fmt] = made
                compressed = await made
                if self._current is rendered:
                    self._compressed[fmt] = compressed
            elif isinstance(made, asyncio.Future):
                await made
        return self.body(fmt, gzip)

    def body(self, fmt: Format, gzip: bool) -> Body:
        """One scrape's body, reused for up to LIVE_TTL seconds while the snapshot is the
        same. A gzip stream not made yet is made here, holding the loop: ``serve`` is what
        the HTTP server calls."""
        current, now = self._current, time.monotonic()
        cached = self._bodies.get((fmt, gzip))
        if cached is not None and cached[1].rendered is current and now - cached[0] < LIVE_TTL:
            return cached[1]
        tail = encode(self._live, fmt)
        if fmt is Format.OPENMETRICS:
            tail += EOF_MARKER
        compressed = None
        if gzip:
            made = self._compressed.get(fmt)
            # Made for this rendering by a scrape that waited for it, and not yet kept.
            if (
                isinstance(made, asyncio.Future)
                and made.done()
                and not made.cancelled()
                and made.exception() is None
            ):
                made = self._compressed[fmt] = made.result()
            if isinstance(made, Compressed):
                compressed = made
            else:
                compressed = self._compressed[fmt] = current.compress(fmt)
            tail = compressed.finish(tail)
            length = compressed.length + len(tail)
        else:
            length = current.size(fmt) + len(tail)
        body = Body(length, current, fmt, compressed, tail)
        self._bodies[(fmt, gzip)] = (now, body)
        return body
