"""The poller against a fake fetcher and an in-memory store: no HTTP, no rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from exporter.cloud.errors import ApiError, ErrorKind
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.state import CloudObject, DevServerImage, Snapshot
from exporter.domain.targets import Resource, Target, TargetKey
from exporter.polling.poller import Poller

Answer = CloudObject | None | Exception


class FakeFetcher:
    """Answers from a table; counts calls and the most fetches in flight at once."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
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


class MemoryStore:
    """The SnapshotStore protocol, without rendering."""

    def __init__(self) -> None:
        self.snapshot = Snapshot((), {}, 60.0)
        self._lock = asyncio.Lock()

    async def update(self, change: Callable[[Snapshot], Snapshot]) -> Snapshot:
        async with self._lock:
            self.snapshot = change(self.snapshot)
            return self.snapshot


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
    p = Poller(fetcher, store, tuple(target(i) for i in ids), interval=60, concurrency=concurrency,
               clock=lambda: now[0])  # fmt: skip
    return p, store


def states(snapshot: Snapshot) -> dict[str, tuple[bool, bool | None, str | None, str | None]]:
    """id -> (up, exists, status, error label)."""
    return {
        t.key.id: (t.up, t.exists, t.obj.status if t.obj else None, t.error_label)
        for t in snapshot.targets
    }


async def test_each_kind_of_answer_becomes_its_state() -> None:
    fetcher = FakeFetcher({
        "ok": image("ACTIVE"),
        "gone": None,
        "throttled": ApiError(ErrorKind.HTTP, "slow down", status=429, error_code="APIGW.0308"),
        "bug": ZeroDivisionError(),
    })  # fmt: skip
    p, _ = poller(fetcher, ["ok", "gone", "throttled", "bug"], [1000.0])
    snap = await p.run_cycle()
    assert states(snap) == {
        "ok": (True, True, "ACTIVE", None),
        "gone": (True, False, None, None),
        "throttled": (False, None, None, "APIGW.0308"),
        "bug": (False, None, None, "internal"),
    }
    assert snap.ready and snap.last_poll_timestamp == 1000.0


async def test_failure_keeps_last_values_and_status_clock_moves_only_on_change() -> None:
    now = [1000.0]
    fetcher = FakeFetcher({"a": image("ACTIVE")})
    p, _ = poller(fetcher, ["a"], now)
    first = (await p.run_cycle()).targets[0]
    now[0] = 1060.0
    fetcher.answers["a"] = ApiError(ErrorKind.TIMEOUT, "no answer")
    failed = (await p.run_cycle()).targets[0]
    assert (failed.up, failed.obj, failed.last_success, failed.status_since) == (
        False, first.obj, 1000.0, 1000.0,
    )  # fmt: skip
    now[0] = 1120.0
    fetcher.answers["a"] = image("ACTIVE")
    assert (await p.run_cycle()).targets[0].status_since == 1000.0
    now[0] = 1180.0
    fetcher.answers["a"] = image("INACTIVE")
    changed = (await p.run_cycle()).targets[0]
    assert (changed.status_since, changed.last_success) == (1180.0, 1180.0)


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_concurrency_is_bounded(concurrency: int) -> None:
    ids = [f"t{n}" for n in range(10)]
    fetcher = FakeFetcher(dict.fromkeys(ids, image("ACTIVE")))
    p, _ = poller(fetcher, ids, [0.0], concurrency=concurrency)
    await p.run_cycle()
    assert fetcher.peak == min(concurrency, len(ids))
    assert sorted(fetcher.calls) == sorted(ids)


async def test_target_removed_during_a_cycle_is_dropped_and_added_one_merged() -> None:
    fetcher = FakeFetcher({"a": image("ACTIVE"), "b": image("ACTIVE"), "c": image("ACTIVE")})
    p, store = poller(fetcher, ["a", "b"], [0.0])
    fetcher.gate = asyncio.Event()
    cycle = asyncio.create_task(p.run_cycle())
    await asyncio.sleep(0)
    added = p.reconfigure((target("a"), target("c")), interval=60, concurrency=4)
    assert [t.key.id for t in added] == ["c"]
    fetcher.gate.set()
    await p.poll_some(added)
    await cycle
    assert [t.key.id for t in store.snapshot.targets] == ["a", "c"]
    assert store.snapshot.configured[Resource.DEVSERVER_IMAGE] == 2
