"""A client-side request rate limit, so large configurations stay under gateway throttling."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Spaces requests at least ``1 / rate`` seconds apart (GCRA with a burst of one)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._gap = 1.0 / rate
        self._next = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's slot; slots are handed out in call order."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._gap
        if slot > now:
            await asyncio.sleep(slot - now)
