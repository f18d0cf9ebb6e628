"""One list sweep of one kind of object in one project, read into a round.

A sweep that fails loses nothing: every object keeps its last values, marked down. A sweep
forbidden to list (403) asks about configured IDs one by one; a service not offered in the
project (404 APIGW.0101) is asked again after UNAVAILABLE_RETRY. A discovered object leaves
after MISSING_SWEEPS_TO_DROP complete sweeps without it: objects shift between pages while
a sweep runs, so one miss proves nothing. An incomplete sweep removes nothing it lacks,
up to a slack: a project never holds more discovered objects than the last sweep listed
plus ``unlisted_slack`` of that (a tenth, at least UNLISTED_MIN), so that lists which are
never whole and IDs that churn cannot pile objects up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from exporter.cloud.errors import ApiError
from exporter.domain.health import Health, failed, news
from exporter.domain.state import (
    CloudObject,
    ListSweep,
    SweepState,
    TargetState,
    observe_answer,
    observe_failure,
)
from exporter.domain.targets import Origin, Sweep, TargetKey
from exporter.polling.health import reason
from exporter.polling.round import Round

log = logging.getLogger(__name__)

MISSING_SWEEPS_TO_DROP = 2
# Discovered objects an incomplete sweep did not list that a project keeps at most: a tenth
# of what the sweep listed, and at least UNLISTED_MIN.
UNLISTED_MIN = 100
UNAVAILABLE_RETRY = 3600.0  # a service not offered in a project is asked again after this
SLICE = 500  # objects a sweep processes between two yields to the event loop


class Listing(Protocol):
    """What a sweep found (``exporter.cloud.listing.Listing`` in production)."""

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


class Lister(Protocol):
    """Lists a sweep's objects (the Huawei Cloud client in production)."""

    async def list_objects(
        self, sweep: Sweep, deadline: float | None = None, slots: asyncio.Semaphore | None = None
    ) -> Listing:
        """Every wanted object of a sweep; raises ApiError when any page fails."""
        ...


class SweepReader:
    """Runs sweeps and records what they found, or what went wrong, in a round."""

    def __init__(self, lister: Lister, clock: Callable[[], float]) -> None:
        self._lister = lister
        self._clock = clock
        # Sweeps record what they found one at a time: a hundred lists often end together,
        # and one slice of each in the same turn of the event loop stalled it for 80 ms.
        self._recording = asyncio.Lock()

    async def read(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        deadline: float,
        slots: asyncio.Semaphore,
        found: Round,
    ) -> None:
        try:
            listing = await self._lister.list_objects(sweep, deadline, slots)
        except Exception as exc:
            self._sweep_failed(sweep, mine, prev, exc, found)
        else:
            async with self._recording:
                await self._sweep_listed(sweep, mine, prev, listing, found)

    def _sweep_failed(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        exc: Exception,
        found: Round,
    ) -> None:
        """Nothing is lost: every object keeps its last values, marked down; when only
        listing is forbidden, configured IDs are asked about one by one instead."""
        key = sweep.key
        why = list_failed(
            key.resource.value, key.project_id, prev, exc, self._clock(),
            "polling configured IDs one by one instead",
        )  # fmt: skip
        found.calls += 1
        found.sweeps[key] = SweepState(
            key, why.health, prev.objects if prev else None, 1,
            prev.complete if prev else None, not why.forbidden, why.unavailable_until,
        )  # fmt: skip
        message, label = why.health.error or "", why.health.error_label or ""
        configured = set(sweep.configured)
        for k, state in mine.items():
            if not (why.forbidden and k.id in configured):
                found.states[k] = observe_failure(state, k, message, label, state.origin)
        for oid in sweep.configured:
            k = TargetKey(key.resource, key.project_id, oid)
            if why.forbidden:
                found.details.append(sweep.target(oid))
            elif k not in mine:
                found.states[k] = observe_failure(None, k, message, label)

    async def _sweep_listed(
        self,
        sweep: Sweep,
        mine: dict[TargetKey, TargetState],
        prev: SweepState | None,
        listing: Listing,
        found: Round,
    ) -> None:
        key = sweep.key
        configured = set(sweep.configured)
        ok = Health(True, self._clock())  # one for the sweep and every object it listed
        found.calls += listing.pages
        complete = listing.incomplete is None
        known = {k.id: state for k, state in mine.items()}
        for n, (oid, obj) in enumerate(listing.objects.items()):
            prev_state = known.get(oid)
            k = prev_state.key if prev_state else TargetKey(key.resource, key.project_id, oid)
            origin = Origin.CONFIGURED if oid in configured else Origin.DISCOVERED
            found.states[k] = observe_answer(prev_state, k, obj, ok, origin)
            if n % SLICE == SLICE - 1:
                await asyncio.sleep(0)  # a sweep of 10,000 objects must not stall the loop
        # Configured IDs the list did not show: one detail call each decides (404: gone).
        found.details += [sweep.target(o) for o in sweep.configured if o not in listing.objects]
        unlisted = [
            (k, state) for k, state in mine.items()
            if k.id not in listing.objects and state.origin is Origin.DISCOVERED
        ]  # fmt: skip
        if complete:  # an incomplete list proves nothing about what it left out
            for k, state in unlisted:
                if state.missing + 1 >= MISSING_SWEEPS_TO_DROP:
                    found.dropped.add(k)
                else:
                    found.states[k] = replace(state, missing=state.missing + 1)
        elif len(unlisted) > (slack := unlisted_slack(len(listing.objects))):
            # Lists that are never whole, with IDs that churn, must not pile objects up:
            # those seen longest ago go first.
            unlisted.sort(key=lambda ks: (ks[1].last_success or 0.0, ks[0].id))
            found.dropped.update(k for k, _ in unlisted[: len(unlisted) - slack])
        log_listed(
            key.resource.value, key.project_id, prev, listing.incomplete,
            "nothing it lacks is removed, and configured IDs it lacks are asked about one by one",
        )  # fmt: skip
        found.sweeps[key] = SweepState(key, ok, len(listing.objects), listing.pages, complete)


def unlisted_slack(listed: int) -> int:
    """How many discovered objects an incomplete sweep that listed ``listed`` leaves in
    place without seeing them; the rest, those seen longest ago first, are dropped."""
    return max(UNLISTED_MIN, listed // 10)


def log_listed(
    resource: str, project_id: str, prev: ListSweep | None, incomplete: str | None, meaning: str
) -> None:
    """One line when a list turns incomplete (saying why, and what that ``meaning`` is) or
    a failing sweep recovers; nothing while it stays as it was."""
    fields = {"resource": resource, "project_id": project_id}
    if incomplete is not None and (prev is None or prev.complete is not False):
        log.warning("list answer is incomplete (%s): %s", incomplete, meaning, extra=fields)
    elif prev is not None and not prev.up:
        log.info("sweep recovered", extra=fields)


@dataclass(frozen=True, slots=True)
class ListFailed:
    """How a list sweep failed: its health, whether listing is forbidden (403), and until
    when a service not offered in the project is left alone (404 APIGW.0101)."""

    health: Health
    forbidden: bool
    unavailable_until: float | None


def list_failed(
    resource: str, project_id: str, prev: ListSweep | None, exc: Exception, now: float,
    if_forbidden: str,
) -> ListFailed:  # fmt: skip
    """Why any list sweep failed, logged once when it starts failing or fails differently,
    not every cycle; ``if_forbidden`` says what the sweep does when listing is forbidden."""
    message, label = reason(exc, f"sweeping {resource} in {project_id}")
    error = exc if isinstance(exc, ApiError) else None
    forbidden = error is not None and error.forbidden
    unavailable = None
    fields = {"resource": resource, "project_id": project_id}
    if error is not None and error.not_offered:
        unavailable = now + UNAVAILABLE_RETRY
        log.info(
            "the service is not offered in this project (404 APIGW.0101); asking again in %gs",
            UNAVAILABLE_RETRY,
            extra=fields,
        )
    elif forbidden:
        if prev is None or prev.list_allowed:
            log.warning("listing is forbidden; %s: %s", if_forbidden, message, extra=fields)
    else:
        changed = news(prev.health if prev else None, label)
        log.log(
            logging.WARNING if changed else logging.DEBUG, "sweep failed: %s", message,
            extra=fields,
        )  # fmt: skip
    health = failed(prev.health if prev else None, message, label)
    return ListFailed(health, forbidden, unavailable)
