"""Sub-jobs counted exactly once, whatever the list's order, page size and arrivals.

The job watcher is driven against a sub-job list held in memory: newest-first or
oldest-first, served a few items a page by a gateway, with new sub-jobs arriving while its
pages are read. Every failure that appears after the first look must be counted once: not
twice when pages overlap or shift, and not lost when it arrives mid-read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.cloud.listing import Page
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.jobs import Job, SubJob
from exporter.domain.targets import ProjectEndpoint
from exporter.polling.jobs import JOB_CALLS, MAX_PAGES, PAGE, JobWatcher

NOW = 1_800_000_000.0
SCOPE = ProjectEndpoint("p", "http://127.0.0.1:9", AkSkCredentials("ak", "sk"))


def sub_job(n: int, status: str, at: float) -> SubJob:
    return SubJob(f"sub-{n}", f"job-{n}", "BUILD_IMAGE", f"srv-{n}", "name", status,
                  "WKS.0500" if status == "FAILED" else "", "", at, at + 10)  # fmt: skip


@dataclass
class SubJobList:
    """Sub-jobs newest first in ``items``; served in either order, ``cap`` a page. Before
    sub-job call number N, the sub-jobs ``arrivals[N]`` are added as the newest."""

    items: list[SubJob]
    oldest_first: bool
    cap: int
    arrivals: dict[int, list[SubJob]] = field(default_factory=dict)
    calls: int = 0

    async def jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[Job]:
        return Page([], 0)

    async def sub_jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[SubJob]:
        self.items[:0] = reversed(self.arrivals.pop(self.calls, []))
        self.calls += 1
        listed = [j for j in self.items if "job_id" not in query or j.job_id == query["job_id"]]
        if self.oldest_first:
            listed.reverse()
        offset = int(query["offset"])
        size = min(int(query["limit"]), self.cap)
        return Page(listed[offset : offset + size], len(listed))


def counted(state_failures: tuple[tuple[tuple[str, str], int], ...]) -> int:
    return sum(n for _, n in state_failures)


@given(
    history=st.integers(0, 250),
    oldest_first=st.booleans(),
    cap=st.integers(1, PAGE),
    new=st.lists(st.sampled_from(["FAILED", "SUCCESS"]), max_size=4),
    arriving=st.dictionaries(
        st.integers(0, 12), st.lists(st.sampled_from(["FAILED", "SUCCESS"]), max_size=2),
        max_size=2,
    ),
)  # fmt: skip
async def test_every_new_failure_is_counted_exactly_once(
    history: int,
    oldest_first: bool,
    cap: int,
    new: list[str],
    arriving: dict[int, list[str]],
) -> None:
    old = [sub_job(n, "FAILED" if n % 7 == 0 else "SUCCESS", NOW - 90_000 + n)
           for n in range(history)][::-1]  # fmt: skip
    listed = SubJobList(old, oldest_first, cap)
    clock = [NOW]
    watcher = JobWatcher(listed, clock=lambda: clock[0])
    state, _ = await watcher.refresh(SCOPE, None, None, None)  # the baseline
    assert counted(state.failures) == 0

    serial = iter(range(10_000, 20_000))
    fresh = [sub_job(next(serial), s, NOW + 5 + k) for k, s in enumerate(new)]
    listed.items[:0] = reversed(fresh)
    listed.arrivals = {
        listed.calls + call: [sub_job(next(serial), s, NOW + 20 + call) for s in statuses]
        for call, statuses in arriving.items()
    }
    arrived = [j for batch in listed.arrivals.values() for j in batch]
    for n in range(5):  # arrivals during the first three; the last two see what came
        if n == 3:
            listed.arrivals.clear()  # arrivals scheduled past the reads made never happen
        clock[0] += 60
        state, _ = await watcher.refresh(SCOPE, state, None, None)
        assert state.up
    happened = [j for j in fresh + arrived if j in listed.items]
    assert counted(state.failures) == sum(j.failed for j in happened)


async def test_overlapping_pages_from_an_oldest_first_end_count_a_failure_once() -> None:
    # 250 sub-jobs oldest first: page 0 holds 0-99, then 150-249 and 50-149 overlap it.
    old = [sub_job(n, "SUCCESS", NOW - 90_000 + n) for n in range(249)][::-1]
    listed = SubJobList(old, oldest_first=True, cap=PAGE)
    clock = [NOW]
    watcher = JobWatcher(listed, clock=lambda: clock[0])
    state, _ = await watcher.refresh(SCOPE, None, None, None)
    listed.items.insert(0, sub_job(999, "FAILED", NOW + 5))
    clock[0] += 60
    state, _ = await watcher.refresh(SCOPE, state, None, None)
    assert counted(state.failures) == 1


async def test_a_sub_job_from_the_year_9999_is_never_the_latest() -> None:
    listed = SubJobList([], oldest_first=False, cap=PAGE)
    clock = [NOW]
    watcher = JobWatcher(listed, clock=lambda: clock[0])
    state, _ = await watcher.refresh(SCOPE, None, None, None)
    far = SubJob("sub-far", "job-far", "BUILD_IMAGE", "srv-1", "a", "SUCCESS", "", "",
                 NOW, 253_402_300_000.0)  # fmt: skip
    listed.items[:0] = [far]
    clock[0] += 60
    state, _ = await watcher.refresh(SCOPE, state, None, None)
    assert state.latest == ()
    now = sub_job(7, "FAILED", NOW + 100)
    listed.items[:0] = [replace(now, resource_id="srv-1")]
    clock[0] += 60
    state, _ = await watcher.refresh(SCOPE, state, None, None)
    assert [j.id for j in state.latest] == ["sub-7"]


async def test_a_count_of_a_trillion_reads_a_bounded_number_of_pages() -> None:
    class Huge(SubJobList):
        async def sub_jobs_page(
            self, scope: ProjectEndpoint, query: dict[str, str],
            deadline: float | None = None, slots: asyncio.Semaphore | None = None,
        ) -> Page[SubJob]:  # fmt: skip
            page = await super().sub_jobs_page(scope, query, deadline, slots)
            return Page(page.items, 10**12)

    items = [sub_job(n, "SUCCESS", NOW - n) for n in range(2000)]
    listed = Huge(items, oldest_first=False, cap=PAGE)
    watcher = JobWatcher(listed, clock=lambda: NOW)
    state, calls = await watcher.refresh(SCOPE, None, None, None)  # was a MemoryError
    assert state.up and calls <= MAX_PAGES + JOB_CALLS


async def test_thousands_of_failures_are_a_few_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = SubJobList([], oldest_first=False, cap=PAGE)
    clock = [NOW]
    watcher = JobWatcher(listed, clock=lambda: clock[0])
    state, _ = await watcher.refresh(SCOPE, None, None, None)
    listed.items[:0] = [sub_job(n, "FAILED", NOW + 10) for n in range(900)]
    clock[0] += 60
    caplog.set_level(logging.WARNING, logger="exporter")
    state, _ = await watcher.refresh(SCOPE, state, None, None)
    assert counted(state.failures) == 900
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6 and lines[-1].startswith("895 more image build sub-jobs failed")
