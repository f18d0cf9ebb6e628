"""The poll schedule: APScheduler interval jobs in the running event loop.

Two jobs at most: the poll cycle, and (with ``poll.transitional_interval``) the quick poll
of objects in a transitional status between cycles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

JOB_ID = "poll"
QUICK_JOB_ID = "transitional"

Job = Callable[[], Awaitable[object]]


def _trigger(interval: float) -> IntervalTrigger:
    # Up to 5% (at most 5 s) of jitter keeps many exporters from hitting the API in step.
    return IntervalTrigger(seconds=interval, jitter=min(interval * 0.05, 5.0), timezone=UTC)


class PollScheduler:
    """Runs ``job`` now and then every ``interval`` seconds, never two at once; and ``quick``
    every ``quick_interval`` seconds when that is set, first one interval after start.

    A run that comes due while the previous one is still going is skipped (coalesced), and
    one that is late by more than half an interval is dropped rather than run in a burst.
    """

    def __init__(
        self,
        job: Job,
        interval: float,
        quick: Job | None = None,
        quick_interval: float | None = None,
    ) -> None:
        self._jobs: dict[str, Job] = {JOB_ID: job}
        if quick is not None:
            self._jobs[QUICK_JOB_ID] = quick
        self._intervals: dict[str, float | None] = {JOB_ID: interval, QUICK_JOB_ID: quick_interval}
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start inside the running event loop; the first poll cycle is immediate."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.start()
        self._scheduler = scheduler
        self._add(JOB_ID, first=datetime.now(UTC))
        self._add(QUICK_JOB_ID)

    def _add(self, job_id: str, first: datetime | None = None) -> None:
        interval = self._intervals[job_id]
        if self._scheduler is None or interval is None or job_id not in self._jobs:
            return
        # No next_run_time means "from the trigger"; None would add the job paused.
        start = {} if first is None else {"next_run_time": first}
        self._scheduler.add_job(
            self._jobs[job_id],
            _trigger(interval),
            id=job_id,
            **start,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval / 2)),
        )

    def reschedule(self, interval: float, quick_interval: float | None = None) -> None:
        """Switch to new intervals (after a reload); the next runs follow the new ones."""
        for job_id, new in ((JOB_ID, interval), (QUICK_JOB_ID, quick_interval)):
            old, self._intervals[job_id] = self._intervals[job_id], new
            if self._scheduler is None or new == old:
                continue
            if old is not None and self._scheduler.get_job(job_id) is not None:
                if new is None:
                    self._scheduler.remove_job(job_id)
                else:
                    self._scheduler.reschedule_job(job_id, trigger=_trigger(new))
            else:
                self._add(job_id)

    def shutdown(self) -> None:
        """Stop scheduling; a run in flight is the caller's to cancel."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
