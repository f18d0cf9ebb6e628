"""Warnings that cannot flood the log.

A hostile or broken cloud can make the same thing go wrong for every item of every page,
every cycle: 20,000 failed sub-jobs, 100,000 projects in unknown regions, hundreds of
connections refused. Each kind of warning is written at most once per ``every`` seconds;
the next one written says how many like it were held back meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

MAX_KINDS = 1024  # kinds remembered; past that the oldest are forgotten


class RateLimitedLog:
    """Writes each kind of warning at most once per ``every`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}  # kind -> (when written, held back)

    def emit(
        self, kind: str, msg: str, *args: object, extra: Mapping[str, Any] | None = None
    ) -> bool:
        """Write ``msg % args`` unless a warning of ``kind`` was written recently; True if
        it was written."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last[0] < self._every:
            self._last[kind] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        if held:
            msg += f" (and {held} more like it in the last {self._every:g}s)"
        self._last.pop(kind, None)
        if len(self._last) >= MAX_KINDS:
            del self._last[next(iter(self._last))]
        self._last[kind] = (now, 0)
        self._logger.warning(msg, *args, extra=extra)
        return True
