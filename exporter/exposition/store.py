"""The served state: the current snapshot, its rendering, and the bodies scrapes are sent.

The Exposition is the one owner of "the current snapshot". Whoever changes it (the poller
after a cycle, a reload) hands it a function from the current snapshot to the next; the
exposition applies it, renders, and swaps the rendering in with one assignment, all under
its own lock, so changes never interleave and scrapes only ever see whole snapshots.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client.registry import CollectorRegistry

from exporter.domain.state import Snapshot
from exporter.exposition.render import CloudLines, Rendered, render, render_async
from exporter.exposition.textformat import EOF_MARKER, Format, encode

# A whole scrape body is reused for this long: the live part (process and API counters) is
# at most this old, and a burst of scrapes costs little more than sending the bytes.
LIVE_TTL = 1.0

# Awaitable, so that a change over 100,000 objects can yield to the loop as it goes.
Change = Callable[[Snapshot], Awaitable[Snapshot]]


class Exposition:
    """Holds the latest rendered snapshot and assembles scrape bodies.

    ``live`` is rendered at scrape time (at most once per LIVE_TTL) and appended after the
    pre-rendered snapshot part.
    """

    def __init__(self, live: CollectorRegistry, initial: Snapshot) -> None:
        self._live = live
        self._current = render(initial)
        self._lock = asyncio.Lock()
        self._bodies: dict[tuple[Format, bool], tuple[Rendered, float, list[bytes]]] = {}
        self._cloud_lines: CloudLines = {}

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
            self._current, self._cloud_lines = await render_async(snapshot, self._cloud_lines)
            return snapshot

    def body(self, fmt: Format, gzip: bool) -> list[bytes]:
        """The chunks of one scrape's body, in order; reused for up to LIVE_TTL seconds
        while the snapshot is the same."""
        current, now = self._current, time.monotonic()
        cached = self._bodies.get((fmt, gzip))
        if cached is not None and cached[0] is current and now - cached[1] < LIVE_TTL:
            return cached[2]
        part = current.part(fmt)
        tail = encode(self._live, fmt)
        if fmt is Format.OPENMETRICS:
            tail += EOF_MARKER
        chunks = [part.gzip(tail)] if gzip else [*part.chunks, tail]
        self._bodies[(fmt, gzip)] = (current, now, chunks)
        return chunks
