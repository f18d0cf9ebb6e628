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

Failed sub-jobs are counted once: their IDs are remembered while the API lists them as
recent (and kept in the state file with ``--storage.path``). Failures that were already
there when the exporter first looked at a project are the baseline, not counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Protocol

from exporter.cloud.client import Page
from exporter.cloud.errors import ApiError
from exporter.cloud.metrics import MAX_ERROR_CODES, OTHER_ERROR_CODE
from exporter.domain.jobs import IN_FLIGHT_STATUSES, JobsState, SubJob
from exporter.domain.targets import ProjectEndpoint

log = logging.getLogger(__name__)

PAGE = 100  # the largest page the job lists serve
MAX_PAGES = 10  # sub-job pages per project and refresh: the latest 1,000 at most
MAX_JOB_PAGES = 10  # pages of in-flight jobs per status
MAX_FOLLOW_UPS = 20  # jobs whose in-flight sub-jobs are asked about one job at a time
# Calls a refresh makes at least: WAITING jobs, RUNNING jobs, the newest sub-jobs.
JOB_CALLS = len(IN_FLIGHT_STATUSES) + 1
HORIZON = 3600.0  # sub-jobs older than this before the last refresh are not read again


class JobLister(Protocol):
    """Reads the job lists (the Huawei Cloud client in production)."""

    async def jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[tuple[str, str]]:
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
        except ApiError as exc:
            state = self._failed(scope, prev, str(exc), exc.label)
        except Exception as exc:
            log.exception("unexpected error reading the jobs of project %s", scope.project_id)
            state = self._failed(scope, prev, f"internal error: {type(exc).__name__}", "internal")
        return state, calls[0]

    def _failed(
        self, scope: ProjectEndpoint, prev: JobsState | None, error: str, label: str
    ) -> JobsState:
        fields = {"project_id": scope.project_id}
        if prev is None or prev.up or prev.error_label != label:
            log.warning("reading image build jobs failed: %s", error, extra=fields)
        if prev is None:
            return JobsState(scope.project_id, False, None, error=error, error_label=label)
        return replace(prev, up=False, error=error, error_label=label)

    async def _refresh(
        self,
        scope: ProjectEndpoint,
        prev: JobsState | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
        calls: list[int],
    ) -> JobsState:
        now = self._clock()

        async def jobs(query: dict[str, str]) -> Page[tuple[str, str]]:
            calls[0] += 1
            return await self._lister.jobs_page(scope, query, deadline, slots)

        async def sub_jobs(query: dict[str, str]) -> Page[SubJob]:
            calls[0] += 1
            return await self._lister.sub_jobs_page(scope, query, deadline, slots)

        in_flight: Counter[tuple[str, str]] = Counter()
        for status in IN_FLIGHT_STATUSES:
            offset = 0
            for _ in range(MAX_JOB_PAGES):
                page = await jobs({"status": status, "limit": str(PAGE), "offset": str(offset)})
                in_flight.update((kind, status) for kind, _ in page.items)
                offset += len(page.items)
                if not page.items or (page.count is not None and offset >= page.count):
                    break

        # After a refresh, only what ended since (with a margin for clock skew) is new.
        last = prev.last_success if prev else None
        horizon = None if last is None else last - HORIZON
        recent = await _recent(sub_jobs, horizon)
        seen = {j.id for j in recent}
        # Sub-jobs in flight last time that the recent pages did not show: ask their jobs.
        unsettled = [j for j in (prev.running if prev else ()) if j.id not in seen]
        waiting = dict.fromkeys(j.job_id for j in unsettled)
        for job_id in list(waiting)[:MAX_FOLLOW_UPS]:
            of_job = await sub_jobs({"job_id": job_id, "limit": str(PAGE), "offset": "0"})
            recent += [j for j in of_job.items if j.id not in seen]
            seen.update(j.id for j in of_job.items)
        return self._advance(scope.project_id, prev, recent, in_flight, now)

    def _advance(
        self,
        project_id: str,
        prev: JobsState | None,
        recent: list[SubJob],
        in_flight: Counter[tuple[str, str]],
        now: float,
    ) -> JobsState:
        """The new state from what the lists showed: latest per server, failures counted."""
        latest = {j.resource_id: j for j in (prev.latest if prev else ())}
        for j in recent:
            old = latest.get(j.resource_id)
            if j.resource_id and (old is None or (j.moment, j.id) >= (old.moment, old.id)):
                latest[j.resource_id] = j
        failures = Counter(dict(prev.failures)) if prev else Counter()
        counted = prev.counted if prev else frozenset()
        failed = [j for j in recent if j.failed]
        for j in failed:
            if j.id in counted or prev is None:  # the first look at a project is the baseline
                continue
            failures[(j.job_type, self.error_code(j.error_code))] += 1
            log.warning(
                "image build sub-job failed: %s",
                j.error_message or "(no message)",
                extra={
                    "project_id": project_id, "id": j.resource_id, "job_id": j.job_id,
                    "job_type": j.job_type, "error_code": j.error_code,
                },
            )  # fmt: skip
        if prev is not None and not prev.up:
            log.info("reading image build jobs recovered", extra={"project_id": project_id})
        return JobsState(
            project_id,
            True,
            now,
            in_flight=tuple(sorted(in_flight.items())),
            latest=tuple(sorted(latest.values(), key=lambda j: j.resource_id)),
            failures=tuple(sorted(failures.items())),
            counted=frozenset(j.id for j in failed),
            running=tuple(j for j in recent if j.in_flight),
        )


async def _recent(
    sub_jobs: Callable[[dict[str, str]], Awaitable[Page[SubJob]]], horizon: float | None
) -> list[SubJob]:
    """Sub-jobs from the newest end of the list until a page is all older than ``horizon``
    (or MAX_PAGES were read)."""
    first = await sub_jobs({"limit": str(PAGE), "offset": "0"})
    found = list(first.items)
    total = first.count
    if total is None or total <= len(first.items) or not first.items:
        return found
    begins = [j.begin for j in first.items if j.begin is not None]
    if len(begins) > 1 and begins[0] < begins[-1]:
        # Oldest first: the newest are on the last page; read backwards from there.
        offsets: Iterable[int] = range(max(0, total - PAGE), 0, -PAGE)
    elif _all_older(first.items, horizon):
        return found
    else:
        offsets = range(PAGE, total, PAGE)
    for offset in list(offsets)[: MAX_PAGES - 1]:
        page = await sub_jobs({"limit": str(PAGE), "offset": str(offset)})
        found += page.items
        if _all_older(page.items, horizon):
            break
    return found


def _all_older(items: list[SubJob], horizon: float | None) -> bool:
    return horizon is not None and all(j.moment < horizon for j in items)
