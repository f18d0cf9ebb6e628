"""Reading a list in whole pages, for a list whose ``offset`` the API reference leaves open.

The dev-server list takes ``limit`` and ``offset`` and answers which page it is
(``current``). Its reference calls ``offset`` "the start offset of the records", but a
sibling ModelArts list with the same answer shape was seen to read it as a page number
(``page = offset // limit``). Asking only for ``offset = k × size`` means page k under both
readings. ``current`` must then count up by one from the first page's (0 or 1, both seen);
a page that says otherwise makes the read incomplete, since its paging is not what the
reader assumed.

Pages do not overlap, so a list that shifts while it is read is caught by its total
changing, or by fewer distinct IDs than the total (items are de-duplicated by ID). As with
one-item pages of an offset list (``exporter.cloud.paging``), a deletion and a creation that
cancel out between two pages cannot be told from a list that never changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from exporter.cloud.paging import PARALLEL_PAGES, Paged


@dataclass(frozen=True, slots=True)
class Numbered:
    """One page as this reader sees it: its items' IDs in order, the total it reports and
    the page number it says it is (None when it says nothing)."""

    ids: list[str]
    count: int | None
    current: int | None


async def read_numbered(
    fetch: Callable[[int, int], Awaitable[Numbered]], limit: int, max_pages: int
) -> Paged:
    """Fetch every page through ``fetch(offset, limit)``, asking for ``limit`` a page, or
    for the size the first page came in when the server serves fewer."""
    return await _Reader(fetch, max_pages).run(limit)


class _Reader:
    def __init__(self, fetch: Callable[[int, int], Awaitable[Numbered]], max_pages: int) -> None:
        self._fetch = fetch
        self._max_pages = max_pages
        self.pages = 0
        self.seen: set[str] = set()
        self.counts: set[int] = set()
        self.base: int | None = None  # the first page's number: 0 or 1
        self.problem: str | None = None

    async def run(self, limit: int) -> Paged:
        first = await self._get(0, limit, 0)
        size = len(first.ids)
        if not size:
            if first.count:
                self.problem = f"the first page is empty although the list counts {first.count}"
        elif first.count is None:
            await self._read_until_short(size)
        else:
            await self._read_counted(size)
        if self.problem is None and self.counts:
            if len(self.counts) > 1:
                self.problem = "the total changed during the sweep"
            elif len(self.seen) < (total := max(self.counts)):
                self.problem = f"{len(self.seen)} distinct objects listed of {total} counted"
        return Paged(self.pages, len(self.seen), self.problem)

    async def _read_counted(self, size: int) -> None:
        number = 1
        while number * size < max(self.counts):
            budget = self._max_pages - self.pages
            if budget <= 0:
                self.problem = self.problem or f"stopped after {self.pages} pages"
                return
            last = -(-max(self.counts) // size)
            batch = range(number, min(last, number + min(budget, PARALLEL_PAGES)))
            await asyncio.gather(*(self._get(k * size, size, k) for k in batch))
            number = batch.stop

    async def _read_until_short(self, size: int) -> None:
        """No total: one page at a time until one comes back short."""
        number = 1
        while True:
            if self.pages >= self._max_pages:
                self.problem = self.problem or f"stopped after {self.pages} pages"
                return
            if len((await self._get(number * size, size, number)).ids) < size:
                return
            number += 1

    async def _get(self, offset: int, size: int, number: int) -> Numbered:
        self.pages += 1
        page = await self._fetch(offset, size)
        self.seen.update(page.ids)
        if page.count is not None:
            self.counts.add(page.count)
        current = page.current
        if number == 0 and current is not None:
            if current in (0, 1):
                self.base = current
            else:
                self.problem = f"the first page says it is page {current}, not 0 or 1"
        elif current is not None and self.base is not None and current != self.base + number:
            self.problem = self.problem or (
                f"offset {offset} answered page {current}, not {self.base + number}: "
                "the list does not page as expected"
            )
        return page
