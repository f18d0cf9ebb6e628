"""The poll schedule: one APScheduler interval job in the running event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

JOB_ID = "poll"


def _trigger(interval: float) -> IntervalTrigger:
    # Up to 5% (at most 5 s) of jitter keeps many exporters from hitting the API in step.
    return IntervalTrigger(seconds=interval, jitter=min(interval * 0.05, 5.0), timezone=UTC)


class PollScheduler:
    """Runs ``job`` now and then every ``interval`` seconds, never two at once.

    A run that comes due while the previous one is still going is skipped (coalesced), and
    one that is late by more than half an interval is dropped rather than run in a burst.
    """

    def __init__(self, job: Callable[[], Awaitable[object]], interval: float) -> None:
        self._job = job
        self._interval = interval
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start inside the running event loop; the first run is immediate."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._job,
            _trigger(self._interval),
            id=JOB_ID,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self._interval / 2)),
        )
        scheduler.start()
        self._scheduler = scheduler

    def reschedule(self, interval: float) -> None:
        """Switch to a new interval (after a reload); the next run follows the new one."""
        if self._scheduler is not None and interval != self._interval:
            self._scheduler.reschedule_job(JOB_ID, trigger=_trigger(interval))
        self._interval = interval

    def shutdown(self) -> None:
        """Stop scheduling; a run in flight is the caller's to cancel."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
