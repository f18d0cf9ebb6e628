"""One poll cycle: sweep projects with list calls, ask about the rest one by one, then hand
the new states to the snapshot's owner.

A cycle runs the sweeps (one per resource and project with discovery) and the detail
calls for configured IDs outside them together, every request holding one of
``concurrency`` slots; then it asks, one by one, about configured IDs a sweep could not
settle (absent from a complete list, left out of an incomplete one, or not listable).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Protocol, TypeVar

from exporter.config.settings import PollSettings
from exporter.domain.accounts import Project
from exporter.domain.health import Health
from exporter.domain.jobs import JobsState
from exporter.domain.sharding import Shard
from exporter.domain.state import (
    TRANSITIONAL_STATUSES,
    CloudObject,
    Snapshot,
    TargetState,
    observe_answer,
    observe_failure,
)
from exporter.domain.targets import (
    Origin,
    ProjectEndpoint,
    Resource,
    Sweep,
    SweepKey,
    Target,
    TargetKey,
)
from exporter.domain.usage import UsageState
from exporter.polling.accounts import ProjectFinder
from exporter.polling.assignment import Assignment, assign, hashed_targets
from exporter.polling.health import reason
from exporter.polling.jobs import JobWatcher, bound_running
from exporter.polling.merge import merged, slices, usage_of_watched, watched_images
from exporter.polling.projects import each_project
from exporter.polling.round import Round, log_transition
from exporter.polling.sweeps import Listing, SweepReader
from exporter.polling.usage import UsageWatcher

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class Fetcher(Protocol):
    """Asks the cloud (the Huawei Cloud client in production)."""

    async def fetch(self, target: Target, deadline: float | None = None) -> CloudObject | None:
        """The object, None when the API says it does not exist; raises ApiError on failure."""
        ...

    async def list_objects(
        self, sweep: Sweep, deadline: float | None = None, slots: asyncio.Semaphore | None = None
    ) -> Listing:
        """Every wanted object of a sweep; raises ApiError when any page fails."""
        ...


class SnapshotStore(Protocol):
    """Owns the current snapshot (the exposition in production)."""

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served."""
        ...

    def update(self, change: Callable[[Snapshot], Awaitable[Snapshot]]) -> Awaitable[Snapshot]:
        """Replace the snapshot by ``await change(current)``; changes never interleave."""
        ...


class Poller:
    """Polls targets and sweeps with bounded concurrency and publishes what it learns."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: SnapshotStore,
        targets: tuple[Target, ...],
        *,
        poll: PollSettings,
        sweeps: tuple[Sweep, ...] = (),
        finder: ProjectFinder | None = None,
        shard: Shard | None = None,
        jobs: JobWatcher | None = None,
        usage: UsageWatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._jobs = jobs
        self._usage = usage
        self._fetcher = fetcher
        self._sweeper = SweepReader(fetcher, clock)
        self._store = store
        self._targets = targets
        self._sweeps = sweeps
        self._finder = finder
        self._shard = shard or Shard()
        self._hashed = hashed_targets(self._shard, targets)
        self._assignment = Assignment(self._shard)
        self._assign()
        self._settings = poll
        self._overrunning = False

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets currently configured (every shard's)."""
        return self._targets

    def _slots(self) -> asyncio.Semaphore:
        """The request slots of one round: ``poll.concurrency`` at once."""
        return asyncio.Semaphore(self._settings.concurrency)

    def _all_sweeps(self) -> tuple[Sweep, ...]:
        """Every shard's sweeps: configured ones and those of accounts' projects (every
        shard finds the projects itself)."""
        if self._finder is None:
            return self._sweeps
        return self._sweeps + self._finder.sweeps(self._sweeps, self._targets)

    def _assign(self) -> Assignment:
        """This shard's part for the round about to run (accounts' projects may change)."""
        accounts = self._finder is not None and bool(self._finder.accounts)
        self._assignment = assign(
            self._shard, self._targets, self._hashed, self._all_sweeps(), accounts=accounts
        )
        return self._assignment

    def reconfigure(
        self, targets: tuple[Target, ...], *, poll: PollSettings, sweeps: tuple[Sweep, ...] = ()
    ) -> tuple[tuple[Target, ...], tuple[Sweep, ...]]:
        """Switch to a new configuration; return the targets and sweeps that are new.

        A cycle in flight finishes; its results for what was removed are dropped when it
        merges.
        """
        old = self._assignment
        self._targets = targets
        self._sweeps = sweeps
        self._settings = poll
        self._hashed = hashed_targets(self._shard, targets)
        return self._assign().diff(old)

    async def run_cycle(self) -> Snapshot:
        """Sweep and poll everything once, then publish the new snapshot."""
        started = time.monotonic()
        deadline = started + self._settings.interval
        if self._finder is not None:
            await self._finder.refresh(deadline)
        mine = self._assign()
        slots = self._slots()
        found, jobs, usage = await asyncio.gather(
            self._poll(mine.plain, mine.sweeps, deadline, slots),
            self._refresh_jobs(deadline, slots),
            self._refresh_usage(deadline, slots),
        )
        found.jobs, job_calls = jobs
        found.usage, usage_calls = usage
        found.calls += job_calls + usage_calls
        duration = time.monotonic() - started
        self._check_overrun(duration, found.calls)
        return await self._merge(found, (duration, found.calls))

    def _job_scopes(self) -> dict[str, ProjectEndpoint]:
        """The projects whose jobs a cycle reads: not those whose Workspace service
        answered that it is not offered there."""
        now = self._clock()
        resting = {
            s.key.project_id
            for s in self._store.snapshot.sweeps
            if s.key.resource is Resource.IMAGE_SERVER and (s.unavailable_until or 0) > now
        }
        scopes = self._assignment.job_scopes
        return {pid: e for pid, e in scopes.items() if pid not in resting}

    async def _refresh_jobs(
        self, deadline: float, slots: asyncio.Semaphore
    ) -> tuple[dict[str, JobsState], int]:
        """Every watched project's image build jobs, and the list calls that took."""
        if self._jobs is None:
            return {}, 0
        previous = {j.project_id: j for j in self._store.snapshot.jobs}
        states, calls = await each_project(
            self._jobs, previous, self._job_scopes(), deadline, slots
        )
        return bound_running(states), calls

    async def _refresh_usage(
        self, deadline: float, slots: asyncio.Semaphore
    ) -> tuple[dict[str, UsageState], int]:
        """Every swept project's dev servers per image, and the list calls that took."""
        if self._usage is None:
            return {}, 0
        previous = {u.project_id: u for u in self._store.snapshot.usage}
        scopes = self._assignment.usage_scopes
        known: tuple[Target | TargetState, ...] = (
            *self._assignment.owned, *self._store.snapshot.targets
        )  # fmt: skip
        watched = await watched_images(scopes.keys(), known)
        scopes = {p: replace(s, watched=watched.get(p, frozenset())) for p, s in scopes.items()}
        return await each_project(self._usage, previous, scopes, deadline, slots)

    async def poll_some(
        self, targets: tuple[Target, ...], sweeps: tuple[Sweep, ...] = ()
    ) -> Snapshot:
        """Poll what a reload just added and merge it into the snapshot; accounts it added
        or changed are listed now, and their projects swept."""
        deadline = time.monotonic() + self._settings.interval
        if self._finder is not None:
            before = {s.key for s in self._assignment.sweeps}
            await self._finder.refresh(deadline)
            added = self._assign().sweeps
            sweeps = (*sweeps, *(s for s in added if s.key not in before))
        found = await self._poll(targets, sweeps, deadline, self._slots())
        return await self._merge(found, None)

    async def poll_transitional(self) -> Snapshot | None:
        """Ask again about objects in a transitional status (``poll.transitional_interval``),
        one detail call each, and merge the answers; None when there is none."""
        busy: set[TargetKey] = set()
        async for part in slices(self._store.snapshot.targets):
            busy.update(
                s.key for s in part if s.obj is not None and s.obj.status in TRANSITIONAL_STATUSES
            )
        if not busy:  # the common case: nothing to look up
            return None
        mine = self._assignment
        targets = [t async for part in slices(mine.owned) for t in part if t.key in busy]
        configured = {t.key for t in targets}
        sweeps = {s.key: s for s in mine.sweeps}
        for k in busy - configured:
            sweep = sweeps.get(k.sweep)
            if sweep is not None:
                targets.append(sweep.target(k.id))
        deadline = time.monotonic() + self._settings.interval
        found = await self._poll(tuple(targets), (), deadline, self._slots())
        return await self._merge(found, None)

    async def restore(
        self,
        states: Iterable[TargetState],
        jobs: Iterable[JobsState] = (),
        usage: Iterable[UsageState] = (),
    ) -> Snapshot:
        """Serve states kept from before a restart (``--storage.path``), before the first
        cycle; those of objects this configuration and shard do not watch are dropped.
        Projects' job states and dev servers per image are kept until the first cycle
        refreshes (or drops) them; each image is marked watched as the objects kept say.

        Objects of accounts' projects cannot be checked until the projects are listed: they
        are kept when their sweep would be this shard's, and the first cycle drops the rest.
        """
        watched = self._assignment.watching()
        kept = tuple([s async for part in slices(states) for s in part if watched(s)])
        kept_jobs = tuple(jobs)
        if self._jobs is not None:
            self._jobs.remember(kept_jobs)

        counts = self._assignment.job_counts
        sweeping = self._assignment.sweeping()
        image = Resource.DEVSERVER_IMAGE
        projects = {u.project_id: u for u in usage if sweeping(SweepKey(image, u.project_id))}
        kept_usage = await usage_of_watched(projects, projects.keys(), kept)

        async def change(current: Snapshot) -> Snapshot:
            return replace(
                current, targets=kept, jobs=kept_jobs, job_counts=counts, usage=kept_usage
            )

        return await self._store.update(change)

    async def publish_current(self) -> Snapshot:
        """Publish the snapshot restricted to what is configured (after a reload)."""
        return await self._merge(Round(), None)

    async def _poll(
        self,
        targets: tuple[Target, ...],
        sweeps: tuple[Sweep, ...],
        deadline: float,
        slots: asyncio.Semaphore,
    ) -> Round:
        current = self._store.snapshot
        # Grouped once (each sweep looking through every state would cost sweeps x
        # objects), and paced: at 100,000 objects this alone would stall the loop.
        previous: dict[TargetKey, TargetState] = {}
        by_sweep: dict[tuple[Resource, str], dict[TargetKey, TargetState]] = {}
        async for part in slices(current.targets):
            for state in part:
                k = state.key
                previous[k] = state
                if sweeps:
                    by_sweep.setdefault((k.resource, k.project_id), {})[k] = state
        previous_sweeps = {s.key: s for s in current.sweeps}
        found = Round()
        now = self._clock()
        resting = [
            prev
            for s in sweeps
            if (prev := previous_sweeps.get(s.key)) and (prev.unavailable_until or 0) > now
        ]
        for prev in resting:  # not offered there: not asked again until the retry time
            found.sweeps[prev.key] = prev
        sweeps = tuple(s for s in sweeps if s.key not in found.sweeps)
        await asyncio.gather(
            self._details(targets, previous, deadline, slots, found),
            *(
                self._sweeper.read(
                    s,
                    by_sweep.get((s.key.resource, s.key.project_id), {}),
                    previous_sweeps.get(s.key),
                    deadline,
                    slots,
                    found,
                )
                for s in sweeps
            ),
        )
        if found.details:
            await self._details(tuple(found.details), previous, deadline, slots, found)
        if found.unlogged:
            log.warning(
                "%d more targets failed, recovered or were found gone in this cycle; "
                "target_up and target_exists have every one",
                found.unlogged,
            )
        return found

    async def _details(
        self,
        targets: tuple[Target, ...],
        previous: dict[TargetKey, TargetState],
        deadline: float,
        slots: asyncio.Semaphore,
        found: Round,
    ) -> None:
        queue: Iterator[Target] = iter(targets)
        found.calls += len(targets)

        async def worker() -> None:
            # Workers share one iterator; asyncio runs one at a time, so next() is safe.
            for target in queue:
                async with slots:
                    state = await self._poll_one(target, previous.get(target.key), deadline)
                found.states[target.key] = state
                log_transition(previous.get(target.key), state, found)

        workers = min(self._settings.concurrency, len(targets))
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _poll_one(
        self, target: Target, prev: TargetState | None, deadline: float
    ) -> TargetState:
        key = target.key
        origin = prev.origin if prev is not None else Origin.CONFIGURED
        try:
            obj = await self._fetcher.fetch(target, deadline)
        except Exception as exc:  # a bug in handling one answer must not hide the others
            message, label = reason(exc, f"polling {key.resource.value} {key.id}")
            return observe_failure(prev, key, message, label, origin)
        return observe_answer(prev, key, obj, Health(True, self._clock()), origin)

    def _projects(self) -> tuple[Project, ...]:
        """Every watched project: found through accounts, or configured (name unknown)."""
        found = self._finder.projects if self._finder else ()
        mine = self._assignment
        watched = dict.fromkeys(
            [t.key.project_id for t in mine.owned] + [s.key.project_id for s in mine.sweeps]
        )
        if self._shard.total > 1:  # each shard names only the projects it polls
            found = tuple(p for p in found if p.id in watched)
        seen = {p.id for p in found}
        return found + tuple(Project(pid, "", "") for pid in watched if pid not in seen)

    def _check_overrun(self, duration: float, calls: int) -> None:
        """One warning when cycles start taking longer than the interval, with the reason."""
        overrun = duration > self._settings.interval
        if overrun and not self._overrunning:
            reason = ""
            if self._settings.max_requests_per_second:
                rate = self._settings.max_requests_per_second
                need = calls / rate
                reason = (
                    f"; {calls} API calls at poll.max_requests_per_second={rate:g} take "
                    f"at least {need:.1f}s, so poll.interval must be {math.ceil(need * 1.1)}s "
                    "or more (or raise the rate)"
                )
            log.warning(
                "poll cycle took %.1fs, longer than poll.interval (%gs): the next cycle starts "
                "late and the schedule skips runs%s",
                duration,
                self._settings.interval,
                reason,
            )
        elif not overrun and self._overrunning:
            log.info("poll cycles fit in poll.interval again")
        self._overrunning = overrun

    async def _merge(self, found: Round, cycle: tuple[float, int] | None) -> Snapshot:
        # Read when the change is applied, not now: a reload may land while this cycle runs.
        async def change(current: Snapshot) -> Snapshot:
            finished = current.last_poll_duration, current.last_poll_timestamp
            calls = current.api_calls
            if cycle is not None:  # a full cycle, not a partial poll after a reload
                finished, calls = (cycle[0], self._clock()), cycle[1]
            return await merged(
                current, found, self._assignment, self._settings.interval, finished=finished,
                calls=calls, accounts=self._finder.states if self._finder else (),
                projects=self._projects(),
            )  # fmt: skip

        return await self._store.update(change)
