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
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from exporter.cloud.errors import ApiError
from exporter.domain.accounts import Project
from exporter.domain.jobs import JobsState
from exporter.domain.sharding import Shard
from exporter.domain.state import (
    TRANSITIONAL_STATUSES,
    CloudObject,
    Snapshot,
    SweepState,
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
from exporter.polling.accounts import ProjectFinder
from exporter.polling.assignment import Assignment, assign, hashed_targets
from exporter.polling.health import reason, worth_a_line
from exporter.polling.jobs import JobWatcher

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# A discovered object leaves /metrics after this many consecutive complete sweeps without
# it: objects shift between pages while a sweep runs, so one miss proves nothing.
MISSING_SWEEPS_TO_DROP = 2
# A service not offered in a project (404 APIGW.0101) is asked again after this long.
UNAVAILABLE_RETRY = 3600.0
SLICE = 500  # objects a sweep processes between two yields to the event loop
MAX_TARGET_LINES = 20  # target state changes logged one by one per round


class Listing(Protocol):
    """What a sweep found (``exporter.cloud.client.Listing`` in production)."""

    @property
    def objects(self) -> dict[str, CloudObject]:
        """Wanted objects by ID."""
        ...

    @property
    def incomplete(self) -> str | None:
        """Why the sweep may have left objects out; None when it is complete."""
        ...

    @property
    def pages(self) -> int:
        """List calls made."""
        ...


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


def configured(targets: Iterable[Target]) -> dict[Resource, int]:
    """How many targets of each resource there are."""
    counts = dict.fromkeys(Resource, 0)
    for t in targets:
        counts[t.key.resource] += 1
    return counts


@dataclass
class _Round:
    """What one cycle (or partial poll) learnt, before it is merged."""

    states: dict[TargetKey, TargetState] = field(default_factory=dict)
    dropped: set[TargetKey] = field(default_factory=set)
    sweeps: dict[SweepKey, SweepState] = field(default_factory=dict)
    details: list[Target] = field(default_factory=list)  # still to ask about, one by one
    calls: int = 0
    jobs: dict[str, JobsState] | None = None  # set by a full cycle
    # Target state changes logged one by one this round, and those past MAX_TARGET_LINES.
    logged: int = 0
    unlogged: int = 0


class Poller:
    """Polls targets and sweeps with bounded concurrency and publishes what it learns."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: SnapshotStore,
        targets: tuple[Target, ...],
        *,
        interval: float,
        concurrency: int,
        sweeps: tuple[Sweep, ...] = (),
        rate: float | None = None,
        finder: ProjectFinder | None = None,
        shard: Shard | None = None,
        jobs: JobWatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._jobs = jobs
        self._fetcher = fetcher
        self._store = store
        self._targets = targets
        self._sweeps = sweeps
        self._finder = finder
        self._shard = shard or Shard()
        self._hashed = hashed_targets(self._shard, targets)
        self._assignment = Assignment(self._shard)
        self._assign()
        self._interval = interval
        self._concurrency = concurrency
        self._rate = rate
        self._overrunning = False

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets currently configured (every shard's)."""
        return self._targets

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
        self,
        targets: tuple[Target, ...],
        *,
        interval: float,
        concurrency: int,
        sweeps: tuple[Sweep, ...] = (),
        rate: float | None = None,
    ) -> tuple[tuple[Target, ...], tuple[Sweep, ...]]:
        """Switch to a new configuration; return the targets and sweeps that are new.

        A cycle in flight finishes; its results for what was removed are dropped when it
        merges.
        """
        old = self._assignment
        self._targets = targets
        self._sweeps = sweeps
        self._interval = interval
        self._concurrency = concurrency
        self._rate = rate
        self._hashed = hashed_targets(self._shard, targets)
        return self._assign().diff(old)

    async def run_cycle(self) -> Snapshot:
        """Sweep and poll everything once, then publish the new snapshot."""
        started = time.monotonic()
        deadline = started + self._interval
        if self._finder is not None:
            await self._finder.refresh(deadline)
        mine = self._assign()
        slots = asyncio.Semaphore(self._concurrency)
        found, jobs = await asyncio.gather(
            self._poll(mine.plain, mine.sweeps, deadline, slots),
            self._refresh_jobs(deadline, slots),
        )
        found.jobs, job_calls = jobs
        found.calls += job_calls
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
        watcher = self._jobs
        previous = {j.project_id: j for j in self._store.snapshot.jobs}
        results = await asyncio.gather(
            *(
                watcher.refresh(scope, previous.get(pid), deadline, slots)
                for pid, scope in sorted(self._job_scopes().items())
            )
        )
        return {state.project_id: state for state, _ in results}, sum(n for _, n in results)

    async def poll_some(
        self, targets: tuple[Target, ...], sweeps: tuple[Sweep, ...] = ()
    ) -> Snapshot:
        """Poll what a reload just added and merge it into the snapshot; accounts it added
        or changed are listed now, and their projects swept."""
        deadline = time.monotonic() + self._interval
        if self._finder is not None:
            before = {s.key for s in self._assignment.sweeps}
            await self._finder.refresh(deadline)
            added = self._assign().sweeps
            sweeps = (*sweeps, *(s for s in added if s.key not in before))
        found = await self._poll(targets, sweeps, deadline, asyncio.Semaphore(self._concurrency))
        return await self._merge(found, None)

    async def poll_transitional(self) -> Snapshot | None:
        """Ask again about objects in a transitional status (``poll.transitional_interval``),
        one detail call each, and merge the answers; None when there is none."""
        busy = {
            state.key
            async for state in _paced(self._store.snapshot.targets)
            if state.obj is not None and state.obj.status in TRANSITIONAL_STATUSES
        }
        if not busy:  # the common case: nothing to look up
            return None
        mine = self._assignment
        targets = [t async for t in _paced(mine.owned) if t.key in busy]
        configured = {t.key for t in targets}
        sweeps = {(s.key.resource, s.key.project_id): s for s in mine.sweeps}
        for k in busy - configured:
            sweep = sweeps.get((k.resource, k.project_id))
            if sweep is not None:
                targets.append(sweep.target(k.id))
        deadline = time.monotonic() + self._interval
        found = await self._poll(tuple(targets), (), deadline, asyncio.Semaphore(self._concurrency))
        return await self._merge(found, None)

    async def restore(
        self, states: Iterable[TargetState], jobs: Iterable[JobsState] = ()
    ) -> Snapshot:
        """Serve states kept from before a restart (``--storage.path``), before the first
        cycle; those of objects this configuration and shard do not watch are dropped.
        Projects' job states are kept until the first cycle refreshes (or drops) them.

        Objects of accounts' projects cannot be checked until the projects are listed: they
        are kept when their sweep would be this shard's, and the first cycle drops the rest.
        """
        watched = self._assignment.watching()
        kept = tuple(s for s in states if watched(s))
        kept_jobs = tuple(jobs)
        if self._jobs is not None:
            self._jobs.remember(kept_jobs)

        counts = self._assignment.job_counts

        async def change(current: Snapshot) -> Snapshot:
            return replace(current, targets=kept, jobs=kept_jobs, job_counts=counts)

        return await self._store.update(change)

    async def publish_current(self) -> Snapshot:
        """Publish the snapshot restricted to what is configured (after a reload)."""
        return await self._merge(_Round(), None)

    async def _poll(
        self,
        targets: tuple[Target, ...],
        sweeps: tuple[Sweep, ...],
        deadline: float,
        slots: asyncio.Semaphore,
    ) -> _Round:
        current = self._store.snapshot
        # Grouped once (each sweep looking through every state would cost sweeps x
        # objects), and paced: at 100,000 objects this alone would stall the loop.
        previous: dict[TargetKey, TargetState] = {}
        by_sweep: dict[tuple[Resource, str], dict[TargetKey, TargetState]] = {}
        async for state in _paced(current.targets):
            k = state.key
            previous[k] = state
            if sweeps:
                by_sweep.setdefault((k.resource, k.project_id), {})[k] = state
        previous_sweeps = {s.key: s for s in current.sweeps}
        found = _Round()
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
                self._sweep(
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
        found: _Round,
    ) -> None:
        queue: Iterator[Target] = iter(targets)
        found.calls += len(targets)

        async def worker() -> None:
            # Workers share one iterator; asyncio runs one at a time, so next() is safe.
            for target in queue:
                async with slots:
                    state = await self._poll_one(target, previous.get(target.key), deadline)
                found.states[target.key] = state
                _log_transition(previous.get(target.key), state, found)

        workers = min(self._concurrency, len(targets))
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
        return observe_answer(prev, key, obj, self._clock(), origin)

    async def _sweep(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        deadline: float,
        slots: asyncio.Semaphore,
        found: _Round,
    ) -> None:
        try:
            listing = await self._fetcher.list_objects(sweep, deadline, slots)
        except Exception as exc:
            self._sweep_failed(sweep, mine, prev, exc, found)
        else:
            await self._sweep_listed(sweep, mine, prev, listing, found)

    def _sweep_failed(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        exc: Exception,
        found: _Round,
    ) -> None:
        """Nothing is lost: every object keeps its last values, marked down; when only
        listing is forbidden, configured IDs are asked about one by one instead."""
        key = sweep.key
        error = exc if isinstance(exc, ApiError) else None
        message, label = reason(exc, f"sweeping {key.resource.value} in {key.project_id}")
        forbidden = error is not None and error.forbidden
        found.calls += 1
        unavailable = None
        if error is not None and error.not_offered:
            unavailable = self._clock() + UNAVAILABLE_RETRY
        found.sweeps[key] = SweepState(
            key, False, prev.last_success if prev else None, prev.objects if prev else None,
            1, prev.complete if prev else None, not forbidden, message, label, unavailable,
        )  # fmt: skip
        if unavailable is not None:
            log.info(
                "the service is not offered in this project (404 APIGW.0101); asking again in %gs",
                UNAVAILABLE_RETRY,
                extra={"resource": key.resource.value, "project_id": key.project_id},
            )
        else:
            _log_sweep_failure(sweep, prev, message, label, forbidden)
        configured = set(sweep.configured)
        for k, state in mine.items():
            if not (forbidden and k.id in configured):
                found.states[k] = observe_failure(state, k, message, label, state.origin)
        for oid in sweep.configured:
            k = TargetKey(key.resource, key.project_id, oid)
            if forbidden:
                found.details.append(sweep.target(oid))
            elif k not in mine:
                found.states[k] = observe_failure(None, k, message, label)

    async def _sweep_listed(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        listing: Listing,
        found: _Round,
    ) -> None:
        key = sweep.key
        configured = set(sweep.configured)
        now = self._clock()
        found.calls += listing.pages
        complete = listing.incomplete is None
        known = {k.id: state for k, state in mine.items()}
        for n, (oid, obj) in enumerate(listing.objects.items()):
            prev_state = known.get(oid)
            k = prev_state.key if prev_state else TargetKey(key.resource, key.project_id, oid)
            origin = Origin.CONFIGURED if oid in configured else Origin.DISCOVERED
            found.states[k] = observe_answer(prev_state, k, obj, now, origin)
            if n % SLICE == SLICE - 1:
                await asyncio.sleep(0)  # a sweep of 10,000 objects must not stall the loop
        # Configured IDs the list did not show: one detail call each decides (404: gone).
        found.details += [sweep.target(o) for o in sweep.configured if o not in listing.objects]
        if complete:  # an incomplete list proves nothing about what it left out
            for k, state in mine.items():
                if k.id in listing.objects or state.origin is not Origin.DISCOVERED:
                    continue
                if state.missing + 1 >= MISSING_SWEEPS_TO_DROP:
                    found.dropped.add(k)
                else:
                    found.states[k] = replace(state, missing=state.missing + 1)
        fields = {"resource": key.resource.value, "project_id": key.project_id}
        if not complete and (prev is None or prev.complete is not False):
            log.warning(
                "list answer is incomplete (%s): nothing it lacks is removed, and configured "
                "IDs it lacks are asked about one by one",
                listing.incomplete,
                extra=fields,
            )
        elif prev is not None and not prev.up:
            log.info("sweep recovered", extra=fields)
        found.sweeps[key] = SweepState(
            key, True, now, len(listing.objects), listing.pages, complete
        )

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
        overrun = duration > self._interval
        if overrun and not self._overrunning:
            reason = ""
            if self._rate:
                need = calls / self._rate
                reason = (
                    f"; {calls} API calls at poll.max_requests_per_second={self._rate:g} take "
                    f"at least {need:.1f}s, so poll.interval must be {math.ceil(need * 1.1)}s "
                    "or more (or raise the rate)"
                )
            log.warning(
                "poll cycle took %.1fs, longer than poll.interval (%gs): the next cycle starts "
                "late and the schedule skips runs%s",
                duration,
                self._interval,
                reason,
            )
        elif not overrun and self._overrunning:
            log.info("poll cycles fit in poll.interval again")
        self._overrunning = overrun

    async def _merge(self, found: _Round, cycle: tuple[float, int] | None) -> Snapshot:
        # Read when the change is applied, not now: a reload may land while this cycle runs.
        # The change yields to the loop as it goes: at 100,000 objects it takes 0.2 s.
        async def change(current: Snapshot) -> Snapshot:
            known: dict[TargetKey, TargetState] = {}
            async for t in _paced(current.targets):
                known[t.key] = t
            before = set(known)
            async for k, state in _paced(found.states.items()):
                known[k] = state
            for k in found.dropped:
                known.pop(k, None)
            mine = self._assignment
            swept = {(s.key.resource, s.key.project_id) for s in mine.sweeps}
            config = {t.key for t in mine.owned}
            states = [known[t.key] async for t in _paced(mine.owned) if t.key in known]
            if swept:
                states += await _discovered(known, swept, config, before)
            sweeps = {s.key: s for s in current.sweeps} | found.sweeps
            finished = current.last_poll_duration, current.last_poll_timestamp
            calls = current.api_calls
            jobs = await _jobs_of_watched(
                found.jobs if found.jobs is not None else {j.project_id: j for j in current.jobs},
                mine.job_scopes.keys(),
                states,
            )
            if cycle is not None:  # a full cycle, not a partial poll after a reload
                finished, calls = (cycle[0], self._clock()), cycle[1]
            return Snapshot(
                targets=tuple(states),
                configured=configured(mine.owned),
                interval=self._interval,
                last_poll_duration=finished[0],
                last_poll_timestamp=finished[1],
                sweeps=tuple(sweeps[s.key] for s in mine.sweeps if s.key in sweeps),
                api_calls=calls,
                accounts=self._finder.states if self._finder else (),
                projects=self._projects(),
                shard=(self._shard.index, self._shard.total),
                jobs=jobs,
                job_counts=mine.job_counts,
            )

        return await self._store.update(change)


async def _paced(items: Iterable[_T]) -> AsyncIterator[_T]:
    """``items``, yielding to the event loop every SLICE * 10 of them."""
    for n, item in enumerate(items):
        yield item
        if n % (SLICE * 10) == SLICE * 10 - 1:
            await asyncio.sleep(0)


async def _jobs_of_watched(
    jobs: dict[str, JobsState], projects: Collection[str], states: list[TargetState]
) -> tuple[JobsState, ...]:
    """The job states of watched projects, each naming the last job of watched image
    servers only: the series stay bounded by the fleet, whatever the job list holds."""
    kept = [jobs[pid] for pid in sorted(jobs.keys() & set(projects))]
    if not any(j.latest for j in kept):
        return tuple(kept)
    server = Resource.IMAGE_SERVER
    servers = {
        (s.key.project_id, s.key.id) async for s in _paced(states) if s.key.resource is server
    }
    for n, j in enumerate(kept):
        latest = tuple(sub for sub in j.latest if (j.project_id, sub.resource_id) in servers)
        if len(latest) != len(j.latest):
            kept[n] = replace(j, latest=latest)
    return tuple(kept)


async def _discovered(
    known: dict[TargetKey, TargetState],
    swept: set[tuple[Resource, str]],
    config: set[TargetKey],
    before: set[TargetKey],
) -> list[TargetState]:
    """Discovered objects of the active sweeps: those already served keep their place, new
    ones follow in a stable order, so that only what is new is sorted."""
    discovered = [
        s
        async for k, s in _paced(known.items())
        if s.origin is Origin.DISCOVERED and (k.resource, k.project_id) in swept and k not in config
    ]
    fresh = sorted(
        (s for s in discovered if s.key not in before),
        key=lambda s: (s.key.resource, s.key.project_id, s.key.id),
    )
    return [s for s in discovered if s.key in before] + fresh


def _log_sweep_failure(
    sweep: Sweep, prev: SweepState | None, message: str, label: str, forbidden: bool
) -> None:
    """One line when a sweep starts failing or fails differently; not every cycle."""
    fields = {"resource": sweep.key.resource.value, "project_id": sweep.key.project_id}
    if forbidden:
        if prev is None or prev.list_allowed:
            log.warning(
                "listing is forbidden; polling configured IDs one by one instead: %s",
                message,
                extra=fields,
            )
        return
    changed = worth_a_line(prev.up if prev else None, prev.error_label if prev else None, label)
    log.log(
        logging.WARNING if changed else logging.DEBUG, "sweep failed: %s", message, extra=fields
    )


def _log_transition(prev: TargetState | None, state: TargetState, found: _Round) -> None:
    """One line when a target starts failing, fails differently, recovers or is gone; not
    every cycle, and at most MAX_TARGET_LINES a round (an outage of 10,000 targets is one
    more line with the rest's number)."""
    key = state.key
    failed = not state.up and worth_a_line(
        prev.up if prev else None, prev.error_label if prev else None, state.error_label or ""
    )
    recovered = state.up and prev is not None and not prev.up
    gone = state.exists is False and (prev is None or prev.exists is not False)
    if not (failed or recovered or gone):
        return
    if found.logged >= MAX_TARGET_LINES:
        found.unlogged += 1
        return
    found.logged += 1
    fields = {"resource": key.resource.value, "project_id": key.project_id, "id": key.id}
    if failed:
        log.warning("poll failed: %s", state.error, extra=fields)
    elif recovered:
        log.info("poll recovered", extra=fields)
    if gone:
        log.warning("object does not exist (HTTP 404)", extra=fields)
