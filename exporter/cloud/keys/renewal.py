"""Signing with a temporary key that is renewed in the background before it expires.

One task per source fetches the first key and then renews it when the lesser of
RENEW_BEFORE (40 minutes, the official SDK's threshold) and half the key's lifetime
remains: a 15-minute key is renewed at 7.5 minutes, a 6-hour one at 5 h 20 min. Requests
never wait for a renewal (only the very first key is waited for), and every request shares
the one key. A failed renewal is tried again after 10 s, doubling to 5 minutes, while the
old key signs until it is SAFETY seconds from expiring; then requests fail with the
reason ("credentials: …") until a renewal succeeds. A key the gateway rejects (401) signs
nothing more: Huawei Cloud locks a key after five failed signatures in a row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from yarl import URL

from exporter.cloud.auth import AkSkAuth
from exporter.cloud.errors import ApiError
from exporter.cloud.keys.answer import TemporaryKey
from exporter.cloud.keys.calls import failed
from exporter.cloud.keys.metrics import KeyMetrics

log = logging.getLogger(__name__)

RENEW_BEFORE = 40 * 60.0
SAFETY = 60.0  # a key this close to its expiry signs nothing (clocks disagree by seconds)
FIRST_RETRY = 10.0
MAX_RETRY = 300.0


class KeyFetcher(Protocol):
    """One credential source (``exporter.cloud.keys.metadata`` and its siblings)."""

    @property
    def source(self) -> str:
        """The source's name, as ``credentials.source`` spells it."""
        ...

    async def fetch(self, deadline: float | None) -> TemporaryKey:
        """A fresh key; raises a credentials ApiError when the source gives none."""
        ...


def renew_at(key: TemporaryKey, fetched_at: float) -> float:
    """When a key fetched at ``fetched_at`` is renewed."""
    lifetime = max(0.0, key.expires_at - fetched_at)
    return key.expires_at - min(RENEW_BEFORE, lifetime / 2)


class TemporaryKeyAuth:
    """Signs requests as AK/SK does, with the source's current temporary key."""

    def __init__(
        self,
        fetcher: KeyFetcher,
        metrics: KeyMetrics,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._fetcher = fetcher
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._key: TemporaryKey | None = None
        self._error: ApiError | None = None
        self._rejected: set[str] = set()  # access keys the gateway refused
        self._task: asyncio.Task[None] | None = None
        self._tried = asyncio.Event()  # the first fetch has ended, one way or the other
        self._wake = asyncio.Event()  # renew now: the key was rejected

    @property
    def source(self) -> str:
        """Where the keys come from."""
        return self._fetcher.source

    async def headers(
        self,
        method: str,
        url: URL,
        project_id: str,
        deadline: float | None,
        domain_id: str | None = None,
    ) -> dict[str, str]:
        """Headers signed with the current key; raises a credentials ApiError without one."""
        key = await self._usable(deadline)
        return await AkSkAuth(key.credentials).headers(method, url, project_id, deadline, domain_id)

    def invalidate(self, project_id: str, rejected: Mapping[str, str]) -> bool:
        """After a 401: the key that signed the request signs nothing more, and a renewal
        starts now. The request is not retried (a signature failure counts toward the lock)."""
        key = self._key
        if key is not None and f"Access={key.access_key}," in rejected.get("Authorization", ""):
            self._rejected.add(key.access_key)
            self._wake.set()
        return False

    def close(self) -> asyncio.Task[None] | None:
        """Stop renewing; the renewal task (cancelled) is returned to be awaited."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def _usable(self, deadline: float | None) -> TemporaryKey:
        if self._task is None:
            self._task = asyncio.create_task(self._renew(), name=f"keys:{self.source}")
        if not self._tried.is_set():
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(asyncio.shield(self._tried.wait()), wait)
            except TimeoutError:
                raise failed(self.source, "the first key is still being fetched") from None
        key = self._key
        if key is not None and self._good(key):
            return key
        raise self._unavailable(key)

    def _good(self, key: TemporaryKey) -> bool:
        return self._clock() < key.expires_at - SAFETY and key.access_key not in self._rejected

    def _unavailable(self, key: TemporaryKey | None) -> ApiError:
        why = f" ({self._error.detail})" if self._error is not None else ""
        if key is None:
            return self._error or failed(self.source, "no key yet")
        if key.access_key in self._rejected:
            return failed(self.source, f"the gateway rejected the key; renewing it{why}")
        expired = datetime.fromtimestamp(key.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return failed(self.source, f"the key expired at {expired} and was not renewed{why}")

    async def _renew(self) -> None:
        failures = 0
        while True:
            try:
                key = await self._fetcher.fetch(None)
            except ApiError as exc:
                failures += 1
                self._failed(exc, failures)
                delay = min(MAX_RETRY, FIRST_RETRY * 2 ** (failures - 1))
            else:
                failures = 0
                fetched = self._clock()
                self._key, self._error = key, None
                self._metrics.expires(self.source, key.expires_at)
                # A source that answers the same key again (it renews its own later) is
                # asked again shortly, not in a tight loop.
                delay = max(FIRST_RETRY, renew_at(key, fetched) - fetched)
            self._tried.set()
            await self._pause(delay)

    def _failed(self, exc: ApiError, failures: int) -> None:
        self._metrics.failed(self.source)
        if self._error is None or self._error.detail != exc.detail:
            log.warning("fetching a temporary key failed: %s", exc, extra={"source": self.source})
        self._error = exc
        if failures == 1 and self._key is not None:
            log.info("the current key signs until it expires", extra={"source": self.source})

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a rejected key asks for a renewal now."""
        self._wake.clear()
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, woken):
                task.cancel()
