"""Giving freed C-heap memory back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere (musl, macOS).

    Freed memory stays with the process until the top of the heap is free, so a heap left
    fragmented (by many connections' buffers, or by a cycle's short-lived pages) keeps its
    peak size for good; trimming returns the free pages. ctypes lets go of the GIL while it
    runs, so it is run in a thread."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    return lambda: trim(0)
