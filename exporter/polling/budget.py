"""What a poll cycle costs in API calls, and whether it fits the interval at the set rate."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.cloud.permissions import ACTIONS
from exporter.config.settings import Settings
from exporter.domain.targets import Resource, Sweep, Target
from exporter.polling.jobs import JOB_CALLS


def estimate_calls(targets: Iterable[Target], sweeps: Iterable[Sweep]) -> int:
    """API calls a cycle needs at least: one per configured ID outside sweeps, one per
    sweep (a sweep of image servers needs one more per hundred objects it finds), JOB_CALLS
    per project with image servers for its build jobs, and one per project with dev-server
    image discovery for its dev servers (one more per 1,024 servers)."""
    targets = tuple(targets)
    swept = {s.key for s in sweeps}
    by_id = sum(1 for t in targets if t.key.sweep not in swept)
    with_servers = {k.project_id for k in swept if k.resource is Resource.IMAGE_SERVER} | {
        t.key.project_id for t in targets if t.key.resource is Resource.IMAGE_SERVER
    }
    with_images = {k.project_id for k in swept if k.resource is Resource.DEVSERVER_IMAGE}
    return len(swept) + by_id + JOB_CALLS * len(with_servers) + len(with_images)


def actions_needed(settings: Settings) -> tuple[str, ...]:
    """The IAM actions the calls of ``settings`` need (``exporter.cloud.permissions``)."""
    servers = Resource.IMAGE_SERVER
    by_id = any(t.key.resource is servers for t in settings.targets)
    listed = any(s.key.resource is servers for s in settings.sweeps) or any(
        servers in a.discovery for a in settings.accounts
    )
    apis = set()
    if by_id or (listed and settings.poll.transitional_interval):
        apis.add("image_server")  # quick polls of discovered servers are detail calls
    if listed:
        apis.add("image_server_list")
    if by_id or listed:  # every project with image servers has its build jobs read
        apis |= {"image_server_job_list", "image_server_sub_job_list"}
    images = Resource.DEVSERVER_IMAGE
    for discovery in (
        *(s.discovery for s in settings.sweeps if s.key.resource is images),
        *(a.discovery[images] for a in settings.accounts if images in a.discovery),
    ):  # dev-server image discovery counts the servers running each image
        apis.add("devserver_list")  # the caller's own: asked too when every user's is denied
        if discovery.servers == "all":
            apis.add("devserver_list_all")
    return tuple(sorted(a for api in apis if (a := ACTIONS[api]) is not None))


@dataclass(frozen=True, slots=True)
class Budget:
    """API calls per cycle (a lower bound before the first sweep) against rate and interval."""

    calls: int
    rate: float | None
    interval: float
    accounts: int = 0  # their projects' sweeps are known only once the lists are read

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        """The budget of ``settings`` before its first cycle."""
        calls = estimate_calls(settings.targets, settings.sweeps)
        return cls(
            calls, settings.poll.max_requests_per_second, settings.poll.interval,
            len(settings.accounts),
        )  # fmt: skip

    @property
    def seconds(self) -> float:
        """The least time the calls take at the rate (0 without a rate)."""
        return self.calls / self.rate if self.rate else 0.0

    @property
    def fits(self) -> bool:
        """Whether the calls fit in the interval at the rate."""
        return self.seconds <= self.interval

    @property
    def shortest_interval(self) -> int:
        """The shortest whole-second interval that fits, with a tenth to spare."""
        return max(1, math.ceil(self.seconds * 1.1))

    def describe(self) -> str:
        """One sentence for --check-config and the start-up log."""
        more = (
            "a sweep needs one more per hundred image servers it finds, a project's dev-server "
            "list one more per 1,024 servers, and a project's build jobs more while many are "
            "running or recently finished"
        )
        if self.accounts:
            more += f"; the projects of accounts ({self.accounts}) add their own"
        text = f"a cycle needs at least {self.calls} API calls ({more})"
        if not self.rate:
            return text + "; no poll.max_requests_per_second is set"
        text += (
            f"; at poll.max_requests_per_second={self.rate:g} that takes {self.seconds:.1f}s "
            f"of the {self.interval:g}s poll.interval"
        )
        if not self.fits:
            text += (
                f": it does not fit, so set poll.interval to {self.shortest_interval}s or more, "
                "or raise the rate"
            )
        return text
