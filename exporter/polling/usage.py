"""Which images the dev servers run: one list sweep of dev servers per project with
dev-server image discovery, once per cycle.

Whose servers are counted is the discovery's ``servers``: ``all`` reads every user's
(``GET /dev-servers/all``, as the SDK asks it, with no query), ``mine`` the caller's
(``GET /dev-servers``). When every user's list is forbidden (403) the caller's own is read
instead, said once in the log and by ``sweep_list_allowed`` 0, and every user's is asked
again after FORBIDDEN_RETRY.

Every user's list may come whole in one answer; when its answer says it holds less than its
total, and the caller's list always, the list is read in whole pages of 1,024 servers (the
most the API serves) as ``exporter.cloud.numbered`` describes, which is right whether the
API reads ``offset`` as an item or as a page offset. A sweep fails as a list sweep does: the
counts keep their last values, marked down; a project where ModelArts is not offered
(404 APIGW.0101) is asked again after UNAVAILABLE_RETRY.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from exporter.cloud.errors import ApiError
from exporter.cloud.listing import Page
from exporter.cloud.numbered import Numbered, read_numbered
from exporter.cloud.paging import Paged
from exporter.domain.health import Health
from exporter.domain.state import DEVSERVER_SWEEP
from exporter.domain.targets import DevServerScope
from exporter.domain.usage import DevServer, UsageState, count_images
from exporter.polling.sweeps import list_failed, log_listed

log = logging.getLogger(__name__)

# Enough for 100,000 dev servers in a project at 1,024 a page; past that the sweep says it
# is incomplete rather than reading on.
MAX_PAGES = 100
PAGE_SIZE = 1024  # the largest page the dev-server list serves
FORBIDDEN_RETRY = 3600.0  # every user's list, once forbidden, is asked again after this


def calls_needed(servers: int, *, everyone: bool = True) -> int:
    """The list calls a sweep of a project's ``servers`` dev servers takes at the least:
    every user's list in one answer, or the caller's in whole pages of PAGE_SIZE."""
    return 1 if everyone else max(1, -(-servers // PAGE_SIZE))


class ServerLister(Protocol):
    """Reads the dev-server list (the Huawei Cloud client in production)."""

    async def dev_servers_page(
        self,
        scope: DevServerScope,
        page: tuple[int, int] | None,
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[DevServer]:
        """A page of the dev-server list: ``page`` is (offset, limit), None for no query."""
        ...


class UsageWatcher:
    """Sweeps projects' dev servers into their UsageState."""

    def __init__(self, lister: ServerLister, clock: Callable[[], float] = time.time) -> None:
        self._lister = lister
        self._clock = clock

    async def refresh(
        self,
        scope: DevServerScope,
        prev: UsageState | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> tuple[UsageState, int]:
        """The project's new usage and the list calls it took; never raises for the API's
        sake. A project ModelArts is not offered in is not asked until its retry time."""
        now = self._clock()
        if prev is not None and (prev.unavailable_until or 0) > now:
            return prev, 0
        denied = prev.everyone_denied_until if prev is not None else None
        everyone = scope.everyone and (denied or 0) <= now
        servers: dict[str, DevServer] = {}
        calls = 0
        try:
            if everyone:
                try:
                    read = await self._read(scope, servers, deadline, slots)
                    denied = None
                except ApiError as exc:
                    if not exc.forbidden:
                        raise
                    calls, denied = 1, now + FORBIDDEN_RETRY
                    self._forbidden(scope.project_id, prev, exc)
                    everyone = False
            if not everyone:
                mine = replace(scope, everyone=False)
                read = await self._read(mine, servers, deadline, slots)
        except Exception as exc:
            return self._failed(scope.project_id, prev, exc), calls + 1
        usage = self._listed(scope, prev, servers, read)
        if scope.everyone:
            usage = replace(usage, list_allowed=denied is None, everyone_denied_until=denied)
        return usage, calls + read.pages

    async def _read(
        self,
        scope: DevServerScope,
        servers: dict[str, DevServer],
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> Paged:
        """Read the list ``scope`` names into ``servers``: every user's first as the SDK asks
        for it, then in pages if that answer says it holds less than its total."""

        async def fetch(page: tuple[int, int] | None) -> Numbered:
            got = await self._lister.dev_servers_page(scope, page, deadline, slots)
            servers.update((s.id, s) for s in got.items)
            return Numbered(got.ids or [s.id for s in got.items], got.count, got.current)

        bare = 0
        if scope.everyone:
            whole = await fetch(None)
            if whole.count is None or len(whole.ids) >= whole.count:
                return Paged(1, len(set(whole.ids)), None)
            servers.clear()  # the first page only: read again, in pages of a known size
            bare = 1
        paged = await read_numbered(lambda o, n: fetch((o, n)), PAGE_SIZE, MAX_PAGES)
        return replace(paged, pages=paged.pages + bare)

    def _forbidden(self, project_id: str, prev: UsageState | None, exc: ApiError) -> None:
        if prev is None or prev.everyone_denied_until is None:
            log.warning(
                "listing every user's dev servers is forbidden (%s); counting only the "
                "exporter's own user's servers: grant modelarts:devserver:list, or set "
                "discover.devserver_images.servers: mine",
                exc.detail,
                extra={"resource": DEVSERVER_SWEEP, "project_id": project_id},
            )

    def _listed(
        self,
        scope: DevServerScope,
        prev: UsageState | None,
        servers: dict[str, DevServer],
        read: Paged,
    ) -> UsageState:
        meaning = "the servers per image count only those listed"
        log_listed(DEVSERVER_SWEEP, scope.project_id, prev, read.incomplete, meaning)
        return UsageState(
            scope.project_id, Health(True, self._clock()), objects=len(servers),
            pages=read.pages, complete=read.incomplete is None,
            in_use=count_images(servers, scope.watched),
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
