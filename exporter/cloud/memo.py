"""List pages that did not change are not read again.

From one cycle to the next almost every page of a list comes back byte for byte the same.
Validating and converting a page costs about 60 times more than hashing it, so each page's
digest is kept with what was read from it, and an identical answer is given the very same
result (the same objects, which every later step then recognises as unchanged at once).

Only pages read without a fault are kept: one with a bad item is read again every time, so
that the item is counted and logged every time, as it would be without the memo.
"""

from __future__ import annotations

import hashlib
from typing import Generic, TypeVar

_T = TypeVar("_T")

# Pages remembered at most, the least recently used forgotten first: 16,384 pages of 100
# objects is more than one process is meant to watch.
CAPACITY = 16_384


class PageMemo(Generic[_T]):
    """What was read from each page, by URL, valid while the page's bytes stay the same."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._pages: dict[str, tuple[bytes, _T]] = {}

    def __len__(self) -> int:
        return len(self._pages)

    def recall(self, url: str, body: bytes) -> tuple[bytes, _T | None]:
        """The body's digest, and what was read from this URL last time if it answered the
        very same bytes (else None)."""
        digest = hashlib.sha256(body).digest()
        kept = self._pages.pop(url, None)
        if kept is None or kept[0] != digest:
            return digest, None
        self._pages[url] = kept  # the most recently used last
        return digest, kept[1]

    def keep(self, url: str, digest: bytes, value: _T) -> None:
        """Remember what was read from the page at ``url`` whose body has ``digest``."""
        self._pages.pop(url, None)
        self._pages[url] = (digest, value)
        if len(self._pages) > self._capacity:
            del self._pages[next(iter(self._pages))]
