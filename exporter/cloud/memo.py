"""List pages that did not change are not read again.

From one cycle to the next almost every page of a list comes back byte for byte the same.
Validating and converting a page costs about 60 times more than hashing it, so each page's
digest is kept with what was read from it, and an identical answer is given the very same
result (the same objects, which every later step then recognises as unchanged at once).

Only pages read without a fault are kept: one with a bad item is read again every time, so
that the item is counted and logged every time, as it would be without the memo. What a
page keeps is what the exporter needs of it (positions for paging, and the objects it
watches), and the memo is bounded by the bytes that holds, not only by its page count: a
list of a million objects nobody watches must not be held whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")

# Pages remembered at most, the least recently used forgotten first: 16,384 pages of 100
# objects is more than one process is meant to watch.
CAPACITY = 16_384
# Bytes (as ``weigh`` estimates them) the remembered pages may hold: 100,000 watched
# objects with their pages' positions are about 70 MB.
MAX_BYTES = 128 << 20


class PageMemo(Generic[_T]):
    """What was read from each page, by key (its URL, and whatever else decided what was
    kept of it), valid while the page's bytes stay the same."""

    def __init__(
        self,
        capacity: int = CAPACITY,
        max_bytes: int = MAX_BYTES,
        weigh: Callable[[_T], int] = lambda _: 0,
    ) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._weigh = weigh
        self._pages: dict[str, tuple[bytes, _T, int]] = {}
        self.bytes = 0  # what the remembered pages hold, as weighed

    def __len__(self) -> int:
        return len(self._pages)

    def recall(self, key: str, body: bytes) -> tuple[bytes, _T | None]:
        """The body's digest, and what was read from this page last time if it answered the
        very same bytes (else None)."""
        digest = hashlib.sha256(body).digest()
        kept = self._pages.pop(key, None)
        if kept is None or kept[0] != digest:
            if kept is not None:
                self.bytes -= kept[2]
            return digest, None
        self._pages[key] = kept  # the most recently used last
        return digest, kept[1]

    def keep(self, key: str, digest: bytes, value: _T) -> None:
        """Remember what was read from the page ``key`` whose body has ``digest``."""
        old = self._pages.pop(key, None)
        if old is not None:
            self.bytes -= old[2]
        weight = self._weigh(value)
        self._pages[key] = (digest, value, weight)
        self.bytes += weight
        while self._pages and (len(self._pages) > self._capacity or self.bytes > self._max_bytes):
            _, _, gone = self._pages.pop(next(iter(self._pages)))
            self.bytes -= gone
