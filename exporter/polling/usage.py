"""Which images the dev servers run: one list sweep of dev servers per project with
dev-server image discovery, once per cycle.

The list is read as the other paged lists are (``exporter.cloud.paging``): the offset is
raised by the servers a page returned, pages overlap by one so that a list that shifted
while it was read is noticed, and 1,024 servers a page (the most the API serves) make the
sweep cost about one call per 1,024 servers. It fails as a list sweep does: the counts keep
their last values, marked down; a 403 is reported as listing forbidden, and a project where
ModelArts is not offered (404 APIGW.0101) is asked again after UNAVAILABLE_RETRY.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from exporter.cloud import paging
from exporter.cloud.listing import Page
from exporter.domain.health import Health
from exporter.domain.state import DEVSERVER_SWEEP
from exporter.domain.targets import ProjectEndpoint
from exporter.domain.usage import DevServer, UsageState, count_images
from exporter.polling.sweeps import list_failed, log_listed

# Enough for 100,000 dev servers in a project at 1,024 a page, overlap included; past that
# the sweep says it is incomplete rather than reading on.
MAX_PAGES = 100


class ServerLister(Protocol):
    """Reads the dev-server list (the Huawei Cloud client in production)."""

    async def dev_servers_page(
        self,
        scope: ProjectEndpoint,
        offset: int,
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[DevServer]:
        """A page of the dev-server list from ``offset``."""
        ...


class UsageWatcher:
    """Sweeps projects' dev servers into their UsageState."""

    def __init__(self, lister: ServerLister, clock: Callable[[], float] = time.time) -> None:
        self._lister = lister
        self._clock = clock

    async def refresh(
        self,
        scope: ProjectEndpoint,
        prev: UsageState | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> tuple[UsageState, int]:
        """The project's new usage and the list calls it took; never raises for the API's
        sake. A project ModelArts is not offered in is not asked until its retry time."""
        if prev is not None and (prev.unavailable_until or 0) > self._clock():
            return prev, 0
        servers: dict[str, DevServer] = {}

        async def page(offset: int) -> paging.Positions:
            got = await self._lister.dev_servers_page(scope, offset, deadline, slots)
            servers.update((s.id, s) for s in got.items)
            return paging.Positions(got.ids or [s.id for s in got.items], got.count)

        try:
            read = await paging.read_all(page, MAX_PAGES)
        except Exception as exc:
            return self._failed(scope.project_id, prev, exc), 1
        return self._listed(scope.project_id, prev, servers, read), read.pages

    def _listed(
        self,
        project_id: str,
        prev: UsageState | None,
        servers: dict[str, DevServer],
        read: paging.Paged,
    ) -> UsageState:
        meaning = "the servers per image count only those listed"
        log_listed(DEVSERVER_SWEEP, project_id, prev, read.incomplete, meaning)
        return UsageState(
            project_id, Health(True, self._clock()), objects=len(servers), pages=read.pages,
            complete=read.incomplete is None, in_use=count_images(servers),
        )  # fmt: skip

    def _failed(self, project_id: str, prev: UsageState | None, exc: Exception) -> UsageState:
        """The last counts, marked down; a 403 says listing is forbidden, a service not
        offered is asked again later."""
        why = list_failed(
            DEVSERVER_SWEEP, project_id, prev, exc, self._clock(),
            "the servers per image keep their last counts",
        )  # fmt: skip
        base = prev or UsageState(project_id, why.health)
        return replace(
            base, health=why.health, pages=1, list_allowed=not why.forbidden,
            unavailable_until=why.unavailable_until,
        )  # fmt: skip
