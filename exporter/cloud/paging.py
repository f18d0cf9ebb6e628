"""Reading an offset-paged list whole, and knowing when it really was whole.

The Workspace lists (``?offset=&limit=``, answered ``{"count", "items"}``) are read as the
API reference says: the offset is raised by the items a page *returned*, not by the limit
asked for, since a gateway may serve fewer than ``limit`` per page. Objects created or
deleted while a sweep runs shift the pages under it; a deletion before a page boundary
moves an object that existed all along onto a page already read, where nothing would see
it. So consecutive pages overlap by one item: the next page must start with the last item
of the page before. If it does not, the list shifted between the two reads, and the sweep
says it is incomplete (which removes nothing). For objects kept in a stable order this
proves that an object present throughout the sweep was seen.

Once the first page has told the page size and the total, the remaining pages are fetched
several at once; a page that comes back shorter than the others breaks the chain there, and
the rest is planned again from where that page ended, so a short page never leaves a hole.
Pages already read past the gap are kept and joined to the chain once it reaches them. After
a short page one page is asked for alone: if it is full, the stride is the server's page size
again and the batches grow back (1, 2, 4, 8 pages); if it is short too, the server now
serves that many. Whatever the pattern of page sizes, a read costs a few calls more than
reading one page at a time would (``tests/unit/test_paging.py`` states the bound).

With one item per page no overlap is possible: a deletion before the boundary together
with a creation after it is then invisible to any reader (the pages read the same as a list
that never changed). In that mode only a changed total or too few distinct objects make a
sweep incomplete, and the rule that an object must be missed by two complete sweeps before
it is dropped is the remaining safeguard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# Enough pages for 100,000 objects at 100 a page, overlap included; past that the sweep is
# incomplete (and says so) rather than endless.
MAX_PAGES = 1020
# Pages of one list in flight at once: a list of a million objects served slowly must not
# hold every request slot, or the other projects' sweeps would wait behind it.
PARALLEL_PAGES = 8


def pages_needed(objects: int, size: int) -> int:
    """Calls a whole read of an unchanging list of ``objects`` takes at ``size`` a page:
    the first page, then ``size - 1`` new items a page (pages overlap by one)."""
    if objects <= size:
        return 1
    step = size - 1 if size >= 2 else 1
    return 1 + -(-(objects - size) // step)


@dataclass(frozen=True, slots=True)
class Positions:
    """One page as paging sees it: the IDs of its items in order, and the total it reports
    (None when it reports none)."""

    ids: list[str]
    count: int | None


@dataclass(frozen=True, slots=True)
class Paged:
    """How a read of a whole list went: pages fetched, distinct IDs seen, and why it is
    incomplete (None when it is complete)."""

    pages: int
    distinct: int
    incomplete: str | None


async def read_all(
    fetch: Callable[[int], Awaitable[Positions]], max_pages: int = MAX_PAGES
) -> Paged:
    """Fetch every page of a list through ``fetch(offset)``.

    ``fetch`` keeps what it needs of each page's items; this function decides which offsets
    to ask for and whether what was read is the whole list.
    """
    reader = _Reader(fetch, max_pages)
    return await reader.run()


class _Reader:
    def __init__(self, fetch: Callable[[int], Awaitable[Positions]], max_pages: int) -> None:
        self._fetch = fetch
        self._max_pages = max_pages
        self.pages = 0
        self.seen: set[str] = set()
        self.counts: set[int] = set()
        self.count: int | None = None
        self.stride = 0  # the size of the last page the chain took in
        self.largest = 0  # the largest page served: a shorter one is a probe's cue
        self.end = 0  # the position after the last item read, along the verified chain
        self.last = ""  # the ID of that last item
        self.held: dict[int, list[str]] = {}  # pages read ahead of a gap in the chain
        self.width = PARALLEL_PAGES  # pages planned at once: halved by a short page
        self.problem: str | None = None

    async def _get(self, offset: int) -> Positions:
        self.pages += 1
        page = await self._fetch(offset)
        self.seen.update(page.ids)
        if page.count is not None:
            self.count = page.count
            self.counts.add(page.count)
        return page

    @property
    def _overlap(self) -> int:
        return 1 if self.stride >= 2 else 0

    async def run(self) -> Paged:
        first = await self._get(0)
        if first.ids:
            self.stride = self.largest = len(first.ids)
            self.end, self.last = len(first.ids), first.ids[-1]
            finished = await self._read_on()
        else:
            finished = True
            if first.count:
                self.problem = f"the first page is empty although the list counts {first.count}"
        if not finished and self.problem is None:
            self.problem = f"stopped after {self.pages} pages"
        if self.problem is None and self.count is not None:
            if self._overlap == 0 and len(self.counts) > 1:
                self.problem = "the total changed during the sweep"
            elif len(self.seen) < self.count:
                self.problem = f"{len(self.seen)} distinct objects listed of {self.count} counted"
        return Paged(self.pages, len(self.seen), self.problem)

    async def _read_on(self) -> bool:
        """Read until the list's end; False when the page budget ran out first."""
        while self.count is None or self.end < self.count:
            budget = self._max_pages - self.pages
            if budget <= 0:
                return False
            plan = self._plan(min(budget, PARALLEL_PAGES))
            answers = await asyncio.gather(*(self._get(o) for o in plan))
            full = all(len(page.ids) >= self.largest for page in answers)
            self.width = min(self.width * 2, PARALLEL_PAGES) if full else 1
            self.held.update(zip(plan, (page.ids for page in answers), strict=True))
            if self._advance():
                return True
        return True

    def _plan(self, most: int) -> list[int]:
        """The offsets to ask for next. Pages already held are skipped over. After a page
        shorter than the largest served, one page alone: it tells whether the server
        serves full pages again, rather than planning a batch on a stride that was a blip."""
        overlap = self._overlap
        if self.count is None:
            return [self.end - overlap]
        most = min(most, self.width)
        plan: list[int] = []
        end = self.end
        while end < self.count and len(plan) < most:
            at = end - overlap
            reach = max((o + len(ids) for o, ids in self.held.items() if o <= at), default=0)
            if reach > end:
                end = reach
                continue
            plan.append(at)
            end = at + self.stride
        return plan

    def _advance(self) -> bool:
        """Take held pages into the chain while one reaches its end; True when a page shows
        the list's end."""
        while True:
            overlap = self._overlap
            at = self.end - overlap
            if at in self.held:
                offset = at
            else:  # a page read ahead that covers the chain's end and goes past it
                ahead = [o for o, ids in self.held.items() if o < at < o + len(ids) - overlap]
                if not ahead:
                    self.held = {o: ids for o, ids in self.held.items() if o > at}
                    return False
                offset = min(ahead)
            if self._follow(offset, self.held.pop(offset), overlap):
                return True

    def _follow(self, offset: int, ids: list[str], overlap: int) -> bool:
        """Extend the chain by one page; True when the page shows the list's end."""
        if overlap and self.problem is None:
            at = self.end - 1 - offset  # where the chain's last item must stand in this page
            if at >= len(ids) or ids[at] != self.last:
                self.problem = "objects moved between pages during the sweep"
        if offset + len(ids) <= self.end:
            if ids and self.count is not None and self.end < self.count:
                self.stride = len(ids)  # the overlap alone, though more is counted: read on
                return False  # without the overlap, from where the chain ends
            return True  # nothing past what was already read: this is the end
        self.end, self.last = offset + len(ids), ids[-1]
        if len(ids) < self.largest and self.stride < self.largest:
            self.largest = len(ids)  # two short pages in a row: the server serves this many now
        self.stride = len(ids)
        self.largest = max(self.largest, len(ids))
        return False
