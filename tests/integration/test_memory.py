"""What freezing each published snapshot may keep: keep-alive connections to the exporter's
own HTTP server, opened while a snapshot is published and closed after, are reference
cycles a full collection must free; the exposition reclaims them every RECLAIM_EVERY."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.domain.state import Snapshot
from exporter.exposition.store import Exposition
from exporter.web.server import build_app

CONNECTIONS = 200


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def served() -> AsyncIterator[tuple[Exposition, Clock, str]]:
    clock = Clock()
    store = Exposition(CollectorRegistry(), Snapshot((), {}, 60.0), reclaim_every=3600.0,
                       clock=clock)  # fmt: skip

    async def no_reload() -> None:
        return None

    runner = web.AppRunner(build_app(store, no_reload))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield store, clock, f"http://127.0.0.1:{port}/metrics"
    await runner.cleanup()
    gc.unfreeze()


async def publish(store: Exposition) -> None:
    async def same(current: Snapshot) -> Snapshot:
        return replace(current, last_poll_timestamp=(current.last_poll_timestamp or 0.0) + 1)

    await store.update(same)


async def scrapers_during_a_publication(store: Exposition, url: str) -> None:
    """CONNECTIONS keep-alive scrapers, each with a connection of its own, open while a
    snapshot is published (and frozen), then gone."""
    sessions = [aiohttp.ClientSession() for _ in range(CONNECTIONS)]
    try:
        for s in sessions:
            async with s.get(url) as r:
                await r.read()
        await publish(store)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    await asyncio.sleep(0.1)  # the server sees them close


def frozen_garbage() -> int:
    """Objects frozen that nothing reaches any more (what is left is frozen again)."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


@pytest.mark.parametrize("hour_passed", [False, True])
async def test_connections_frozen_with_a_snapshot_are_reclaimed_within_the_hour(
    served: tuple[Exposition, Clock, str], hour_passed: bool
) -> None:
    store, clock, url = served
    frozen_garbage()
    await scrapers_during_a_publication(store, url)
    if hour_passed:
        clock.now += 3600
    await publish(store)
    found = frozen_garbage()
    if hour_passed:  # the publication an hour on collected them
        assert found < CONNECTIONS // 4, found
    else:  # within the hour they stay frozen, found only by a full collection
        assert found > CONNECTIONS, found
