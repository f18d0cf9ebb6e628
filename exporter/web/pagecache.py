"""The status page, rendered once per snapshot and shared by every request for it.

Twenty people opening the page at once cost one rendering, not twenty; the rendering runs in
slices, so a scrape of /metrics arriving meanwhile is answered between two slices. A page
older than the poll interval is rendered again even if no new snapshot came, so a stalled
poller shows ages that keep growing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from exporter.domain.state import Snapshot
from exporter.web.landing import render_landing_sliced


class PageCache:
    """Owns the last rendered status page."""

    def __init__(
        self,
        render: Callable[[Snapshot], Awaitable[str]] = render_landing_sliced,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._render = render
        self._clock = clock
        self._for: Snapshot | None = None
        self._at = 0.0
        self._page: asyncio.Future[bytes] | None = None

    async def page(self, snapshot: Snapshot) -> bytes:
        """The page of ``snapshot``, UTF-8 encoded; rendered at most once per snapshot
        (and poll interval), whoever asks and however many ask at once."""
        fresh = self._clock() - self._at < snapshot.interval
        if self._page is None or self._for is not snapshot or not fresh:
            self._for, self._at = snapshot, self._clock()
            self._page = asyncio.ensure_future(self._encoded(snapshot))
        # shield: a client that goes away must not cancel the rendering others wait for.
        return await asyncio.shield(self._page)

    async def _encoded(self, snapshot: Snapshot) -> bytes:
        # Cloud strings are cleaned where they enter; "replace" is the second line of defence.
        return (await self._render(snapshot)).encode("utf-8", "replace")
