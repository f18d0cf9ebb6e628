"""Fakes for the poller: a fetcher and lister answering from a script, and a store that
keeps snapshots in memory (no HTTP, no rendering)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from exporter.config.settings import PollSettings
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.state import CloudObject, DevServerImage, Snapshot
from exporter.domain.targets import Resource, Sweep, SweepKey, Target, TargetKey
from exporter.polling.poller import Poller

Answer = CloudObject | None | Exception


@dataclass(frozen=True)
class FakeListing:
    objects: dict[str, CloudObject]
    incomplete: str | None = None
    pages: int = 1


class FakeFetcher:
    """Answers from a table; counts calls and the most fetches in flight at once."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.listings: dict[SweepKey, FakeListing | Exception] = {}
        self.calls: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.gate: asyncio.Event | None = None

    async def fetch(self, target: Target, deadline: float | None = None) -> CloudObject | None:
        self.calls.append(target.key.id)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
            answer = self.answers[target.key.id]
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            self.in_flight -= 1

    async def list_objects(
        self, sweep: Sweep, deadline: float | None = None, slots: asyncio.Semaphore | None = None
    ) -> FakeListing:
        self.calls.append(f"list:{sweep.key.project_id}")
        listing = self.listings[sweep.key]
        if isinstance(listing, Exception):
            raise listing
        return listing


class MemoryStore:
    """The SnapshotStore protocol, without rendering."""

    def __init__(self) -> None:
        self.snapshot = Snapshot((), {}, 60.0)
        self._lock = asyncio.Lock()

    async def update(self, change: Callable[[Snapshot], Awaitable[Snapshot]]) -> Snapshot:
        async with self._lock:
            self.snapshot = await change(self.snapshot)
            return self.snapshot


def poll(concurrency: int = 4) -> PollSettings:
    return PollSettings(interval=60, concurrency=concurrency)


def target(oid: str) -> Target:
    return Target(
        TargetKey(Resource.DEVSERVER_IMAGE, "p", oid), "http://x", AkSkCredentials("a", "b")
    )


def image(status: str) -> DevServerImage:
    return DevServerImage("n", "X86_64", "ECS", status)


def poller(
    fetcher: FakeFetcher, ids: list[str], now: list[float], concurrency: int = 4
) -> tuple[Poller, MemoryStore]:
    store = MemoryStore()
    p = Poller(fetcher, store, tuple(target(i) for i in ids), poll=poll(concurrency),
               clock=lambda: now[0])  # fmt: skip
    return p, store


def states(snapshot: Snapshot) -> dict[str, tuple[bool, bool | None, str | None, str | None]]:
    """id -> (up, exists, status, error label)."""
    return {
        t.key.id: (t.up, t.exists, t.obj.status if t.obj else None, t.error_label)
        for t in snapshot.targets
    }
