"""Accounts' projects, found through IAM on their own interval and turned into sweeps.

Each account's project list is read when due (``poll.projects_refresh_interval``), not every
cycle; when a refresh fails, the last list stays and the account is marked down. A project
that appears is swept in the same cycle; one that vanishes takes its series with it. A
project also reached through ``targets`` is swept once, as configured there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from exporter.domain.accounts import Account, Project
from exporter.domain.health import Health, failed, news
from exporter.domain.state import AccountState
from exporter.domain.targets import Resource, Sweep, SweepKey, Target
from exporter.polling.health import reason

log = logging.getLogger(__name__)

MAX_LOGGED_REGIONS = 20  # regions without an endpoint named one by one in the log
MAX_REGIONS = 10_000  # remembered; past that, nothing more is logged or kept


class ProjectLister(Protocol):
    """Lists an account's projects (the Huawei Cloud client in production)."""

    async def list_projects(
        self, account: Account, deadline: float | None = None
    ) -> tuple[Project, ...]:
        """The enabled projects the account can see; raises ApiError on failure."""
        ...


@dataclass
class _Found:
    """What is known of one account's projects."""

    projects: tuple[Project, ...] = ()
    state: AccountState | None = None
    refreshed_at: float = float("-inf")
    unreachable: set[tuple[Resource, str]] = field(default_factory=set)  # logged once


class ProjectFinder:
    """Owns every account's last project list and when it is next due."""

    def __init__(
        self,
        lister: ProjectLister,
        accounts: tuple[Account, ...],
        *,
        refresh: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lister = lister
        self._clock = clock
        self._accounts: tuple[Account, ...] = ()
        self._refresh = refresh
        self._found: dict[str, _Found] = {}
        self.reconfigure(accounts, refresh=refresh)

    def reconfigure(self, accounts: tuple[Account, ...], *, refresh: float) -> None:
        """Switch to new accounts; a changed account is listed again at the next cycle."""
        old = {a.name: a for a in self._accounts}
        self._found = {
            a.name: self._found[a.name]
            for a in accounts
            if a.name in self._found and old.get(a.name) == a
            and old[a.name].credentials == a.credentials
        }  # fmt: skip
        self._accounts = accounts
        self._refresh = refresh

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The accounts configured."""
        return self._accounts

    @property
    def states(self) -> tuple[AccountState, ...]:
        """Each account's project-list health, once it has been asked."""
        return tuple(f.state for a in self._accounts if (f := self._found.get(a.name)) and f.state)

    @property
    def projects(self) -> tuple[Project, ...]:
        """Every project being watched through an account."""
        return tuple(p for a in self._accounts for p in self._found.get(a.name, _Found()).projects)

    async def refresh(self, deadline: float | None = None) -> None:
        """Read the project lists that are due (all of them at start), concurrently."""
        now = self._clock()
        due = [
            a
            for a in self._accounts
            if now - self._found.get(a.name, _Found()).refreshed_at >= self._refresh
        ]
        await asyncio.gather(*(self._refresh_one(a, deadline) for a in due))

    async def _refresh_one(self, account: Account, deadline: float | None) -> None:
        found = self._found.setdefault(account.name, _Found())
        prev = found.state
        found.refreshed_at = self._clock()
        try:
            listed = await self._lister.list_projects(account, deadline)
        except Exception as exc:
            message, label = reason(exc, f"listing the projects of {account.name}")
            health = prev.health if prev else None
            found.state = AccountState(
                account.name, failed(health, message, label), prev.projects if prev else None
            )
            if news(health, label):
                log.warning(
                    "cannot list the account's projects; keeping the last list (%d projects): %s",
                    len(found.projects),
                    message,
                    extra={"account": account.name},
                )
            return
        found.projects = tuple(p for p in listed if account.wants(p))
        found.state = AccountState(account.name, Health(True, self._clock()), len(found.projects))
        if prev is not None and not prev.up:
            log.info("project list recovered", extra={"account": account.name})

    def sweeps(self, static: Iterable[Sweep], targets: Iterable[Target]) -> tuple[Sweep, ...]:
        """The sweeps of every watched project, after ``static`` (which win); IDs configured
        in ``targets`` for a swept project join its sweep."""
        taken = {s.key for s in static}
        configured: dict[SweepKey, list[str]] = {}
        for t in targets:
            configured.setdefault(SweepKey(t.key.resource, t.key.project_id), []).append(t.key.id)
        out: list[Sweep] = []
        for account in self._accounts:
            found = self._found.get(account.name, _Found())
            for project in found.projects:
                for resource, discovery in account.discovery.items():
                    key = SweepKey(resource, project.id)
                    if key in taken:
                        continue
                    endpoint = account.endpoint(resource, project.region)
                    if endpoint is None:
                        self._unreachable(account, found, resource, project.region)
                        continue
                    taken.add(key)
                    out.append(
                        Sweep(key, endpoint, account.credentials, discovery,
                              tuple(configured.get(key, ())))
                    )  # fmt: skip
        return tuple(out)

    @staticmethod
    def _unreachable(account: Account, found: _Found, resource: Resource, region: str) -> None:
        """One line per (resource, region) without an endpoint, for the first few; past
        MAX_LOGGED_REGIONS, one line per thousand (a hostile IAM can list 100,000)."""
        if (resource, region) in found.unreachable or len(found.unreachable) >= MAX_REGIONS:
            return
        found.unreachable.add((resource, region))
        n = len(found.unreachable)
        if n <= MAX_LOGGED_REGIONS or n % 1000 == 0:
            log.info(
                "no known %s endpoint in region %s; its projects are not swept for it%s",
                resource.value,
                region,
                f" ({n} such regions so far)" if n > MAX_LOGGED_REGIONS else "",
                extra={"account": account.name},
            )
