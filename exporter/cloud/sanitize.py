"""Strings from the cloud made safe where they enter: valid UTF-8 and bounded in length.

A JSON body may carry lone surrogates ("\\ud800") and a header non-UTF-8 bytes (aiohttp
decodes them with surrogateescape); either would fail later, when a page, a log line or
the exposition encodes the text. Length is bounded too: a label value or an error message
of a megabyte helps nobody and costs every scrape.
"""

from __future__ import annotations

MAX_LABEL = 1024  # characters of a label value from the cloud
MAX_MESSAGE = 512  # characters of an error message from the cloud
_ELLIPSIS = "…"


def clean(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with anything UTF-8 cannot encode replaced by ``?``, cut at ``limit``."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        return text[: limit - 1] + _ELLIPSIS
    return text


def clean_optional(text: str | None, limit: int = MAX_MESSAGE) -> str | None:
    """``clean`` for a value that may be absent."""
    return None if text is None else clean(text, limit)
