"""One poll cycle: ask about every target, then hand the new states to the snapshot's owner."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol

from exporter.cloud.errors import ApiError
from exporter.domain.state import (
    CloudObject,
    Snapshot,
    TargetState,
    observe_answer,
    observe_failure,
)
from exporter.domain.targets import Resource, Target, TargetKey

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    """Asks the cloud about one target (the Huawei Cloud client in production)."""

    async def fetch(self, target: Target, deadline: float | None = None) -> CloudObject | None:
        """The object, None when the API says it does not exist; raises ApiError on failure."""
        ...


class SnapshotStore(Protocol):
    """Owns the current snapshot (the exposition in production)."""

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served."""
        ...

    def update(self, change: Callable[[Snapshot], Snapshot]) -> Awaitable[Snapshot]:
        """Replace the snapshot by ``change(current)``; changes never interleave."""
        ...


def configured(targets: Iterable[Target]) -> dict[Resource, int]:
    """How many targets of each resource there are."""
    counts = dict.fromkeys(Resource, 0)
    for t in targets:
        counts[t.key.resource] += 1
    return counts


class Poller:
    """Polls a set of targets with bounded concurrency and publishes what it learns."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: SnapshotStore,
        targets: tuple[Target, ...],
        *,
        interval: float,
        concurrency: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._fetcher = fetcher
        self._store = store
        self._targets = targets
        self._interval = interval
        self._concurrency = concurrency

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets currently configured."""
        return self._targets

    def reconfigure(
        self, targets: tuple[Target, ...], *, interval: float, concurrency: int
    ) -> tuple[Target, ...]:
        """Switch to a new set of targets; return the ones that are new.

        A cycle in flight finishes; its results for targets that were removed are dropped
        when it merges.
        """
        known = {t.key for t in self._targets}
        self._targets = targets
        self._interval = interval
        self._concurrency = concurrency
        return tuple(t for t in targets if t.key not in known)

    async def run_cycle(self) -> Snapshot:
        """Poll every target once, then publish the new snapshot."""
        started = time.monotonic()
        results = await self._poll(self._targets, deadline=started + self._interval)
        return await self._merge(results, time.monotonic() - started)

    async def poll_some(self, targets: tuple[Target, ...]) -> Snapshot:
        """Poll a few targets (just added by a reload) and merge them into the snapshot."""
        started = time.monotonic()
        results = await self._poll(targets, deadline=started + self._interval)
        return await self._merge(results, None)

    async def publish_current(self) -> Snapshot:
        """Publish the snapshot restricted to the configured targets (after a reload)."""
        return await self._merge({}, None)

    async def _poll(
        self, targets: tuple[Target, ...], deadline: float
    ) -> dict[TargetKey, TargetState]:
        previous = {t.key: t for t in self._store.snapshot.targets}
        results: dict[TargetKey, TargetState] = {}
        queue: Iterator[Target] = iter(targets)

        async def worker() -> None:
            # Workers share one iterator; asyncio runs one at a time, so next() is safe.
            for target in queue:
                results[target.key] = await self._poll_one(
                    target, previous.get(target.key), deadline
                )

        workers = min(self._concurrency, len(targets))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return results

    async def _poll_one(
        self, target: Target, prev: TargetState | None, deadline: float
    ) -> TargetState:
        key = target.key
        try:
            obj = await self._fetcher.fetch(target, deadline)
        except ApiError as exc:
            state = observe_failure(prev, key, str(exc), exc.label)
        except Exception as exc:
            # A bug in handling one answer must not hide every other target.
            log.exception("unexpected error polling %s %s", key.resource, key.id)
            state = observe_failure(prev, key, f"internal error: {type(exc).__name__}", "internal")
        else:
            state = observe_answer(prev, key, obj, self._clock())
        _log_transition(prev, state)
        return state

    async def _merge(
        self, results: dict[TargetKey, TargetState], duration: float | None
    ) -> Snapshot:
        # Read when the change is applied, not now: a reload may land while this cycle runs.
        def change(current: Snapshot) -> Snapshot:
            known = {t.key: t for t in current.targets}
            known.update(results)
            finished = current.last_poll_duration, current.last_poll_timestamp
            if duration is not None:  # a full cycle, not a partial poll after a reload
                finished = duration, self._clock()
            return Snapshot(
                targets=tuple(known[t.key] for t in self._targets if t.key in known),
                configured=configured(self._targets),
                interval=self._interval,
                last_poll_duration=finished[0],
                last_poll_timestamp=finished[1],
            )

        return await self._store.update(change)


def _log_transition(prev: TargetState | None, state: TargetState) -> None:
    """One line when a target starts failing, fails differently, or recovers; not every cycle."""
    key = state.key
    fields = {"resource": key.resource.value, "project_id": key.project_id, "id": key.id}
    if not state.up:
        changed = prev is None or prev.up or prev.error_label != state.error_label
        log.log(
            logging.WARNING if changed else logging.DEBUG,
            "poll failed: %s",
            state.error,
            extra=fields,
        )
    elif prev is not None and not prev.up:
        log.info("poll recovered", extra=fields)
    if state.exists is False and (prev is None or prev.exists is not False):
        log.warning("object does not exist (HTTP 404)", extra=fields)
