"""The page memo: a page's reading is given back only for the very same bytes at the same
URL, and the memo stays bounded."""

from __future__ import annotations

from exporter.cloud.memo import PageMemo


def test_the_same_bytes_give_the_same_reading_back() -> None:
    memo: PageMemo[list[str]] = PageMemo()
    digest, known = memo.recall("u1", b"page")
    assert known is None
    reading = ["a", "b"]
    memo.keep("u1", digest, reading)
    assert memo.recall("u1", b"page")[1] is reading
    assert memo.recall("u2", b"page")[1] is None  # another URL: another page


def test_different_bytes_forget_the_old_reading() -> None:
    memo: PageMemo[str] = PageMemo()
    memo.keep("u", memo.recall("u", b"old")[0], "old reading")
    assert memo.recall("u", b"new")[1] is None
    assert memo.recall("u", b"old")[1] is None and len(memo) == 0


def test_the_least_recently_used_page_goes_first() -> None:
    memo: PageMemo[int] = PageMemo(capacity=2)
    for n in (1, 2):
        memo.keep(f"u{n}", memo.recall(f"u{n}", b"x")[0], n)
    assert memo.recall("u1", b"x")[1] == 1  # used: now the most recent
    memo.keep("u3", memo.recall("u3", b"x")[0], 3)
    assert len(memo) == 2
    assert memo.recall("u2", b"x")[1] is None
    assert memo.recall("u1", b"x")[1] == 1 and memo.recall("u3", b"x")[1] == 3


def test_the_memo_is_bounded_by_the_bytes_it_holds() -> None:
    memo: PageMemo[str] = PageMemo(max_bytes=1000, weigh=len)
    for n in range(10):
        memo.keep(f"u{n}", memo.recall(f"u{n}", b"x")[0], "r" * 300)
    assert len(memo) == 3 and memo.bytes == 900  # the newest three
    assert memo.recall("u9", b"x")[1] is not None and memo.recall("u6", b"x")[1] is None
    memo.recall("u9", b"changed")  # a page that changed is forgotten, and its bytes
    assert len(memo) == 2 and memo.bytes == 600
    memo.keep("u8", memo.recall("u8", b"x")[0], "r" * 100)  # kept again, lighter
    assert memo.bytes == 400
