"""Merging a round into the served snapshot, and building a snapshot: the only code that
does either, for the first snapshot and every later one.

Merging yields to the event loop as it goes: at 100,000 objects it takes 0.2 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import replace
from itertools import islice
from typing import TypeVar

from exporter.domain.accounts import Project
from exporter.domain.jobs import JobsState
from exporter.domain.state import (
    AccountState,
    Snapshot,
    SweepState,
    TargetState,
    Transition,
    transition,
)
from exporter.domain.targets import Origin, Resource, Target, TargetKey
from exporter.domain.usage import UsageState, bounded_across
from exporter.polling.assignment import Assignment
from exporter.polling.round import Round
from exporter.polling.sweeps import SLICE

_T = TypeVar("_T")


def configured(targets: Iterable[Target]) -> dict[Resource, int]:
    """How many targets of each resource there are."""
    counts = dict.fromkeys(Resource, 0)
    for t in targets:
        counts[t.key.resource] += 1
    return counts


def snapshot(
    mine: Assignment,
    interval: float,
    *,
    targets: tuple[TargetState, ...] = (),
    sweeps: tuple[SweepState, ...] = (),
    jobs: tuple[JobsState, ...] = (),
    finished: tuple[float | None, float | None] = (None, None),
    calls: int | None = None,
    accounts: tuple[AccountState, ...] = (),
    projects: tuple[Project, ...] = (),
    transitions: tuple[tuple[Transition, int], ...] = (),
    usage: tuple[UsageState, ...] = (),
) -> Snapshot:
    """A snapshot of what ``mine`` watches (with nothing polled yet, the first one)."""
    return Snapshot(
        targets=targets,
        configured=configured(mine.owned),
        interval=interval,
        last_poll_duration=finished[0],
        last_poll_timestamp=finished[1],
        sweeps=sweeps,
        api_calls=calls,
        accounts=accounts,
        projects=projects,
        shard=(mine.shard.index, mine.shard.total),
        jobs=jobs,
        job_counts=mine.job_counts,
        transitions=transitions,
        usage=usage,
    )


async def merged(
    current: Snapshot,
    found: Round,
    mine: Assignment,
    interval: float,
    *,
    finished: tuple[float | None, float | None],
    calls: int | None,
    accounts: tuple[AccountState, ...],
    projects: tuple[Project, ...],
) -> Snapshot:
    """``current`` with what a round found, restricted to what ``mine`` watches."""
    known: dict[TargetKey, TargetState] = {}
    async for part in slices(current.targets):
        known.update({t.key: t for t in part})
    before = set(known)
    changes = dict(current.transitions)
    async for items in slices(found.states.items()):
        for k, state in items:
            change = transition(known.get(k), state)
            if change is not None:
                changes[change] = changes.get(change, 0) + 1
        known.update(items)
    for k in found.dropped:
        known.pop(k, None)
    swept = {(s.key.resource, s.key.project_id) for s in mine.sweeps}
    config = {t.key for t in mine.owned}
    states = []
    async for owned in slices(mine.owned):
        states += [known[t.key] for t in owned if t.key in known]
    if swept:
        states += await _discovered(known, swept, config, before)
    sweeps = {s.key: s for s in current.sweeps} | found.sweeps
    jobs = await _jobs_of_watched(
        found.jobs if found.jobs is not None else {j.project_id: j for j in current.jobs},
        mine.job_scopes.keys(),
        states,
    )
    usage = await usage_of_watched(
        found.usage if found.usage is not None else {u.project_id: u for u in current.usage},
        mine.usage_scopes.keys(),
        states,
    )
    # A project no longer watched takes its counters with it.
    watched = {s.key.project_id for s in states} | {s.key.project_id for s in mine.sweeps}
    counted = tuple(sorted((t, n) for t, n in changes.items() if t[1] in watched))
    return snapshot(
        mine, interval, targets=tuple(states),
        sweeps=tuple(sweeps[s.key] for s in mine.sweeps if s.key in sweeps),
        jobs=jobs, finished=finished, calls=calls, accounts=accounts, projects=projects,
        transitions=counted, usage=usage,
    )  # fmt: skip


async def slices(items: Iterable[_T]) -> AsyncIterator[list[_T]]:
    """``items`` in lists of up to SLICE * 10, yielding to the event loop between them:
    100,000 objects go through several such loops every cycle, and a loop over them all at
    once would stall scrapes; lists, not items one by one, keep the pacing cheap."""
    remaining = iter(items)
    while part := list(islice(remaining, SLICE * 10)):
        yield part
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
        (s.key.project_id, s.key.id)
        async for part in slices(states)
        for s in part
        if s.key.resource is server
    }
    for n, j in enumerate(kept):
        latest = tuple(sub for sub in j.latest if (j.project_id, sub.resource_id) in servers)
        if len(latest) != len(j.latest):
            kept[n] = replace(j, latest=latest)
    return tuple(kept)


async def watched_images(
    projects: Collection[str], states: Iterable[TargetState | Target]
) -> dict[str, frozenset[str]]:
    """The dev-server images watched in each of ``projects``: configured targets, and
    states of images not known to be gone."""
    wanted = set(projects)
    image = Resource.DEVSERVER_IMAGE
    watched: dict[str, set[str]] = {}
    async for part in slices(states):
        for s in part:
            k = s.key
            gone = isinstance(s, TargetState) and s.exists is False
            if k.resource is image and k.project_id in wanted and not gone:
                watched.setdefault(k.project_id, set()).add(k.id)
    return {pid: frozenset(ids) for pid, ids in watched.items()}


async def usage_of_watched(
    usage: dict[str, UsageState], projects: Collection[str], states: Iterable[TargetState]
) -> tuple[UsageState, ...]:
    """The usage of swept projects, each image marked watched or not, and the watched
    images no listed server runs named (so that they are shown as such)."""
    kept = [usage[pid] for pid in sorted(usage.keys() & set(projects))]
    if not kept:
        return ()
    watched = await watched_images({u.project_id for u in kept}, states)
    marked = []
    for u in kept:
        mine = watched.get(u.project_id, frozenset())
        in_use = tuple(replace(i, watched=i.image_id in mine) for i in u.in_use)
        used = {i.image_id for i in u.in_use}
        marked.append(replace(u, in_use=in_use, idle=tuple(sorted(mine - used))))
    return bounded_across(marked)


async def _discovered(
    known: dict[TargetKey, TargetState],
    swept: set[tuple[Resource, str]],
    config: set[TargetKey],
    before: set[TargetKey],
) -> list[TargetState]:
    """Discovered objects of the active sweeps (by resource and project): those already
    served keep their place, new ones follow in a stable order, so that only what is new is
    sorted."""
    kept: list[TargetState] = []
    fresh: list[TargetState] = []
    discovered = Origin.DISCOVERED
    async for items in slices(known.items()):
        for k, s in items:
            if s.origin is discovered and (k.resource, k.project_id) in swept and k not in config:
                (kept if k in before else fresh).append(s)
    fresh.sort(key=lambda s: (s.key.resource, s.key.project_id, s.key.id))
    return kept + fresh
