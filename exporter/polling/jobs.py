"""Image build jobs, refreshed once per cycle for each project with image servers.

Each refresh costs a few list calls per project, not the whole history:
- jobs in flight: the job list filtered to WAITING, then RUNNING (usually one page each);
- recent sub-jobs: the sub-job list from its newest end, page by page, until a page holds
  nothing that ended within HORIZON of now (the first refresh reads up to MAX_PAGES). The
  API does not document its order: the first page's begin times tell whether the newest
  are first or last, and paging starts from that end;
- sub-jobs that were in flight at the last refresh and are not among the recent ones:
  their job's sub-jobs, one call per job, so that a build that ran for hours still shows
  how it ended.

Failed sub-jobs are counted once: they are de-duplicated by ID within a read, and their IDs
are remembered while a later read could still show them as new (and kept in the state file
with ``--storage.path``); what ended before the last read's horizon is never new. Failures
that were already there when the exporter first looked at a project are the baseline, not
counted.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Protocol

from exporter.cloud.listing import Page
from exporter.cloud.metrics import MAX_ERROR_CODES, OTHER_ERROR_CODE
from exporter.domain.health import Health, failed, news
from exporter.domain.jobs import (
    DURATION_BUCKETS,
    IN_FLIGHT_STATUSES,
    MAX_COUNTED,
    Job,
    JobsState,
    SubJob,
)
from exporter.domain.targets import ProjectEndpoint
from exporter.polling.health import reason

log = logging.getLogger(__name__)

PAGE = 100  # the largest page the job lists serve
MAX_PAGES = 10  # sub-job pages per project and refresh: the latest 1,000 at most
MAX_JOB_PAGES = 10  # pages of in-flight jobs per status
MAX_FOLLOW_UPS = 20  # jobs whose in-flight sub-jobs are asked about one job at a time
# Running jobs whose start time is kept, across every project: each is a series.
MAX_RUNNING = 10_000
# Calls a refresh makes at least: WAITING jobs, RUNNING jobs, the newest sub-jobs.
JOB_CALLS = len(IN_FLIGHT_STATUSES) + 1
HORIZON = 3600.0  # sub-jobs older than this before the last refresh are not read again
FUTURE_SLACK = 86400.0  # clocks disagree, but not by more than a day
MAX_LOGGED_FAILURES = 5  # per project and refresh; more are one line with their number


class JobLister(Protocol):
    """Reads the job lists (the Huawei Cloud client in production)."""

    async def jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[Job]:
        """A page of the job list."""
        ...

    async def sub_jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[SubJob]:
        """A page of the sub-job list."""
        ...


class JobWatcher:
    """Refreshes projects' job states; owns the set of error codes that get a series."""

    def __init__(self, lister: JobLister, clock: Callable[[], float] = time.time) -> None:
        self._lister = lister
        self._clock = clock
        self._codes: set[str] = set()

    def error_code(self, code: str) -> str:
        """``code``, or "other" once MAX_ERROR_CODES distinct codes have their own series."""
        if code in self._codes or len(self._codes) < MAX_ERROR_CODES:
            self._codes.add(code)
            return code
        return OTHER_ERROR_CODE

    def remember(self, jobs: Iterable[JobsState]) -> None:
        """Give the error codes of restored failure counts their series again."""
        for j in jobs:
            for (_, code), _n in j.failures:
                if code != OTHER_ERROR_CODE:
                    self.error_code(code)

    async def refresh(
        self,
        scope: ProjectEndpoint,
        prev: JobsState | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> tuple[JobsState, int]:
        """The project's new job state and the list calls it took; never raises for the
        API's sake: a failure keeps the last values, marked down."""
        calls = [0]
        try:
            state = await self._refresh(scope, prev, deadline, slots, calls)
        except Exception as exc:
            message, label = reason(exc, f"reading the jobs of project {scope.project_id}")
            state = self._failed(scope, prev, message, label)
        return state, calls[0]

    def _failed(
        self, scope: ProjectEndpoint, prev: JobsState | None, error: str, label: str
    ) -> JobsState:
        fields = {"project_id": scope.project_id}
        if news(prev.health if prev else None, label):
            log.warning("reading image build jobs failed: %s", error, extra=fields)
        if prev is None:
            return JobsState(scope.project_id, failed(None, error, label))
        return replace(prev, health=failed(prev.health, error, label))

    async def _refresh(
        self,
        scope: ProjectEndpoint,
        prev: JobsState | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
        calls: list[int],
    ) -> JobsState:
        now = self._clock()

        async def jobs(query: dict[str, str]) -> Page[Job]:
            calls[0] += 1
            return await self._lister.jobs_page(scope, query, deadline, slots)

        async def sub_jobs(query: dict[str, str]) -> Page[SubJob]:
            calls[0] += 1
            return await self._lister.sub_jobs_page(scope, query, deadline, slots)

        in_flight: Counter[tuple[str, str]] = Counter()
        started: dict[str, Job] = {}
        complete = True
        for status in IN_FLIGHT_STATUSES:
            # A job that moves between pages while they are read is counted once.
            listed: dict[str, Job] = {}
            offset, total = 0, None
            for _ in range(MAX_JOB_PAGES):
                page = await jobs({"status": status, "limit": str(PAGE), "offset": str(offset)})
                for job in page.items:
                    listed[job.id] = replace(job, status=status)  # as listed, not as said
                offset += len(page.items)
                total = page.count
                if not page.items or (page.count is not None and offset >= page.count):
                    break
            if total is not None and total > len(listed):
                complete = False
                self._log_incomplete(scope.project_id, prev, status, len(listed), total)
            in_flight.update((job.job_type, status) for job in listed.values())
            started.update(listed)

        # After a refresh, only what ended since (with a margin for clock skew) is new.
        last = prev.last_success if prev else None
        horizon = None if last is None else last - HORIZON
        found = await _recent(sub_jobs, horizon)
        # Sub-jobs in flight last time that the recent pages did not show: ask their jobs.
        unsettled = [j for j in (prev.running if prev else ()) if j.id not in found]
        waiting = dict.fromkeys(j.job_id for j in unsettled)
        for job_id in list(waiting)[:MAX_FOLLOW_UPS]:
            of_job = await sub_jobs({"job_id": job_id, "limit": str(PAGE), "offset": "0"})
            _keep(found, of_job.items)
        oldest = sorted(started.values(), key=lambda j: (j.begin is None, j.begin or 0.0, j.id))
        state = self._advance(
            scope.project_id, prev, list(found.values()), in_flight, tuple(oldest), now
        )
        return replace(state, in_flight_complete=complete)

    def _log_incomplete(
        self, project_id: str, prev: JobsState | None, status: str, read: int, total: int
    ) -> None:
        if prev is None or prev.in_flight_complete:
            log.warning(
                "the project has %d image build jobs %s; the exporter reads %d of them "
                "(huaweicloud_image_exporter_jobs_complete 0)",
                total, status, read, extra={"project_id": project_id},
            )  # fmt: skip

    def _advance(
        self,
        project_id: str,
        prev: JobsState | None,
        recent: list[SubJob],
        in_flight: Counter[tuple[str, str]],
        started: tuple[Job, ...],
        now: float,
    ) -> JobsState:
        """The new state from what the lists showed: latest per server, and each ended
        sub-job counted once (its failure, and its duration)."""
        latest = {j.resource_id: j for j in (prev.latest if prev else ()) if _believable(j, now)}
        for j in recent:
            old = latest.get(j.resource_id)
            if not j.resource_id or not _believable(j, now):
                continue
            if old is None or (j.moment, j.id) >= (old.moment, old.id):
                latest[j.resource_id] = j
        failures = Counter(dict(prev.failures)) if prev else Counter()
        durations = Durations(prev.durations if prev else ())
        counted = dict(prev.counted) if prev else {}
        # What ended before the last refresh (less the margin) was there to be seen then:
        # counted then, or part of the baseline. Reading it again, as an order probe or a
        # shifted page may, is no new failure.
        last = prev.last_success if prev else None
        horizon = None if last is None else last - HORIZON
        # One said to end more than a day from now is believed no more than as a latest job:
        # counted, it would be remembered (and written) for ever.
        ended = [j for j in recent if j.ended and _believable(j, now)]
        logged = 0
        for j in ended:
            if j.id in counted or prev is None:  # the first look at a project is the baseline
                continue
            if horizon is not None and (j.end or j.begin) is not None and j.moment < horizon:
                continue
            durations.observe(j)
            if not j.failed:
                continue
            failures[(j.job_type, self.error_code(j.error_code))] += 1
            logged += 1
            if logged <= MAX_LOGGED_FAILURES:
                log.warning(
                    "image build sub-job failed: %s",
                    j.error_message or "(no message)",
                    extra={
                        "project_id": project_id, "id": j.resource_id, "job_id": j.job_id,
                        "job_type": j.job_type, "error_code": j.error_code,
                    },
                )  # fmt: skip
        if logged > MAX_LOGGED_FAILURES:
            log.warning(
                "%d more image build sub-jobs failed (counted in "
                "huaweicloud_workspace_image_job_failures_total)",
                logged - MAX_LOGGED_FAILURES,
                extra={"project_id": project_id},
            )
        if prev is not None and not prev.up:
            log.info("reading image build jobs recovered", extra={"project_id": project_id})
        return JobsState(
            project_id,
            Health(True, now),
            in_flight=tuple(sorted(in_flight.items())),
            latest=tuple(sorted(latest.values(), key=lambda j: j.resource_id)),
            failures=tuple(sorted(failures.items())),
            counted=still_readable(counted, ended, now),
            durations=durations.state(),
            running=tuple(j for j in recent if j.in_flight),
            started=started,
        )


def bound_running(states: dict[str, JobsState]) -> dict[str, JobsState]:
    """At most MAX_RUNNING running jobs across every project, the oldest kept (those the
    "build too long" alert needs); a project that loses some says it is incomplete."""
    every = [(j.begin is None, j.begin or 0.0, pid, j.id) for pid, s in states.items()
             for j in s.started]  # fmt: skip
    if len(every) <= MAX_RUNNING:
        return states
    kept = {(pid, jid) for *_, pid, jid in sorted(every)[:MAX_RUNNING]}
    bounded = dict(states)
    for pid, s in states.items():
        mine = tuple(j for j in s.started if (pid, j.id) in kept)
        if len(mine) < len(s.started):
            if s.in_flight_complete:
                log.warning(
                    "more than %d image build jobs are running across all projects: the "
                    "start times of the newest are left out", MAX_RUNNING,
                    extra={"project_id": pid},
                )  # fmt: skip
            bounded[pid] = replace(s, started=mine, in_flight_complete=False)
    return bounded


def _believable(job: SubJob, now: float) -> bool:
    """Whether a sub-job's times are not far ahead of this clock: one said to end in the
    year 9999 would otherwise stay an image server's latest job for ever."""
    return job.moment <= now + FUTURE_SLACK


class Durations:
    """A project's duration histogram, by (job type, status), while a refresh adds to it."""

    def __init__(self, state: Iterable[tuple[tuple[str, str], tuple[tuple[int, ...], float]]]):
        self._series = {key: (list(counts), total) for key, (counts, total) in state}

    def observe(self, job: SubJob) -> None:
        """Add an ended sub-job's duration (nothing when it has no begin or end)."""
        seconds = job.duration
        if seconds is None:
            return
        key = (job.job_type, job.status)
        counts, total = self._series.get(key) or ([0] * (len(DURATION_BUCKETS) + 1), 0.0)
        counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self._series[key] = (counts, total + seconds)

    def state(self) -> tuple[tuple[tuple[str, str], tuple[tuple[int, ...], float]], ...]:
        """The histogram as JobsState keeps it."""
        return tuple(sorted((k, (tuple(c), t)) for k, (c, t) in self._series.items()))


def still_readable(
    counted: dict[str, float], ended: list[SubJob], now: float
) -> tuple[tuple[str, float], ...]:
    """The ended sub-jobs to remember after a refresh at ``now``: all counted so far, less
    those the next read's horizon puts out of reach (one with no time stays while it is
    still listed)."""
    listed = {j.id for j in ended}
    counted.update((j.id, j.moment) for j in ended)
    reach = now - HORIZON
    kept = [(i, m) for i, m in counted.items() if m >= reach or i in listed]
    if len(kept) > MAX_COUNTED:  # the newest are those a read may still show as new
        kept = sorted(kept, key=lambda im: (im[1], im[0]))[-MAX_COUNTED:]
    return tuple(sorted(kept))


def _keep(found: dict[str, SubJob], items: Iterable[SubJob]) -> None:
    """Add sub-jobs by ID: pages that overlap, or that the list shifted under, show some
    twice, and each must count once. An ended copy wins over one still in flight (it is
    the newer news); otherwise the later read does."""
    for j in items:
        old = found.get(j.id)
        if old is None or not (j.in_flight and not old.in_flight):
            found[j.id] = j


async def _recent(
    sub_jobs: Callable[[dict[str, str]], Awaitable[Page[SubJob]]], horizon: float | None
) -> dict[str, SubJob]:
    """Sub-jobs by ID from the newest end of the list until a page is all older than
    ``horizon`` (or MAX_PAGES were read).

    Offsets advance by the items each page returned, never by the limit asked for: a
    gateway may serve fewer. Reading backwards from an oldest-first end, each stretch of
    one page's size is read forward until it is covered, so a short page leaves no hole.
    """
    found: dict[str, SubJob] = {}
    pages = 0

    async def page(offset: int) -> list[SubJob]:
        nonlocal pages
        pages += 1
        items = (await sub_jobs({"limit": str(PAGE), "offset": str(offset)})).items
        _keep(found, items)
        return items

    first = await sub_jobs({"limit": str(PAGE), "offset": "0"})
    pages = 1
    _keep(found, first.items)
    size, total = len(first.items), first.count
    if total is None or total <= size or not size:
        return found
    if _oldest_first(first.items, await page(max(size, total - size)) if size < 2 else None):
        # Oldest first: the newest are at the end. Read [start, end) stretches backwards.
        end = total
        while end > size and pages < MAX_PAGES:
            start = offset = max(size, end - size)
            stretch: list[SubJob] = []
            while offset < end and pages < MAX_PAGES:
                items = await page(offset)
                if not items:
                    break
                stretch += items
                offset += len(items)
            if _all_older(stretch, horizon):
                break
            end = start
    elif not _all_older(first.items, horizon):
        offset = size
        while offset < total and pages < MAX_PAGES:
            items = await page(offset)
            if not items or _all_older(items, horizon):
                break
            offset += len(items)
    return found


def _oldest_first(first: list[SubJob], tail: list[SubJob] | None) -> bool:
    """Whether the list is oldest first, from the begin times of its first page (or, when
    that page holds one sub-job, of it and of the list's far end)."""
    items = first + (tail or [])
    begins = [j.begin for j in (items[0], items[-1]) if j.begin is not None]
    return len(begins) == 2 and begins[0] < begins[1]


def _all_older(items: list[SubJob], horizon: float | None) -> bool:
    return horizon is not None and all(j.moment < horizon for j in items)
