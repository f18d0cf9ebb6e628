"""Reading a list in whole pages: right whether ``offset`` is an item or a page offset, and
honest about what it missed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.cloud.numbered import Numbered, read_numbered

Fetch = Callable[[int, int], Awaitable[Numbered]]


def served(
    items: list[str], reading: str, cap: int, lie: int = 0, base: int = 1
) -> tuple[Fetch, list[tuple[int, int]]]:
    """A list served under one reading of ``offset``, ``cap`` items a page at most, its
    total ``lie`` more than it holds; returns the fetch and the calls it took."""
    calls: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> Numbered:
        calls.append((offset, limit))
        size = min(limit, cap)
        number = offset // max(limit, 1)
        start = number * limit if reading == "page" else offset
        return Numbered(items[start : start + size], len(items) + lie, number + base)

    return fetch, calls


@given(total=st.integers(0, 5000), cap=st.integers(1, 1024),
       reading=st.sampled_from(["item", "page"]), base=st.sampled_from([0, 1]))  # fmt: skip
async def test_every_item_is_read_once_under_either_reading(
    total: int, cap: int, reading: str, base: int
) -> None:
    items = [f"ds-{n:05d}" for n in range(total)]
    fetch, calls = served(items, reading, cap, base=base)
    result = await read_numbered(fetch, 1024, 10_000)
    assert result.incomplete is None and result.distinct == total
    size = min(cap, 1024)
    assert result.pages == len(calls) == max(1, -(-total // size))
    assert all(offset % limit == 0 for offset, limit in calls)  # whole pages only


@pytest.mark.parametrize("total", [1, 1023, 1024, 1025, 3000])
async def test_a_count_one_more_than_the_items_served_is_incomplete(total: int) -> None:
    items = [f"ds-{n:05d}" for n in range(total)]
    fetch, _ = served(items, "item", 1024, lie=1)
    result = await read_numbered(fetch, 1024, 100)
    assert result.incomplete == f"{total} distinct objects listed of {total + 1} counted"


async def test_a_page_numbered_out_of_turn_makes_the_read_incomplete() -> None:
    items = [f"ds-{n:05d}" for n in range(3000)]

    async def fetch(offset: int, limit: int) -> Numbered:
        return Numbered(items[offset : offset + limit], len(items), 1)  # always "page 1"

    result = await read_numbered(fetch, 1024, 100)
    assert result.incomplete is not None
    assert result.incomplete.startswith(
        ("offset 1024 answered page 1, not 2", "offset 2048 answered page 1, not 3")
    )


async def test_the_page_budget_makes_the_read_incomplete() -> None:
    items = [f"ds-{n:05d}" for n in range(5000)]
    fetch, calls = served(items, "item", 1024)
    result = await read_numbered(fetch, 1024, 3)
    assert len(calls) == 3 and result.incomplete == "stopped after 3 pages"


async def test_no_total_reads_whole_pages_until_a_short_one() -> None:
    items = [f"ds-{n:05d}" for n in range(2500)]

    async def fetch(offset: int, limit: int) -> Numbered:
        return Numbered(items[offset : offset + limit], None, None)

    result = await read_numbered(fetch, 1024, 100)
    assert result.incomplete is None and result.distinct == 2500 and result.pages == 3
