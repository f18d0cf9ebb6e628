"""What the exporter polls: objects configured by ID, and projects swept by list calls."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from exporter.domain.credentials import Credentials

# The documented shapes of IDs. They go into URL paths (escaped all the same), so an ID
# from the cloud that has another shape is not used at all.
PROJECT_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
DEVSERVER_IMAGE_ID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
# The seed documents no pattern for image-server IDs: characters that need no escaping and
# cannot form "." or ".." segments.
IMAGE_SERVER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class Resource(enum.StrEnum):
    """The two kinds of object the exporter watches; the value is the ``resource`` label."""

    DEVSERVER_IMAGE = "devserver_image"
    IMAGE_SERVER = "image_server"


class Origin(enum.StrEnum):
    """How the exporter came to watch an object; the value is the ``origin`` label."""

    CONFIGURED = "configured"
    DISCOVERED = "discovered"


@dataclass(frozen=True, slots=True)
class TargetKey:
    """Identifies a polled object; the same triple labels all of its series."""

    resource: Resource
    project_id: str
    id: str
    # Keys are looked up about ten times per object per cycle: the hash is worked out once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.resource, self.project_id, self.id)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def sweep(self) -> SweepKey:
        """The sweep that lists objects like this one: its kind in its project."""
        return SweepKey(self.resource, self.project_id)


@dataclass(frozen=True, slots=True)
class Target:
    """A configured object with the endpoint that serves it and the credentials to ask with."""

    key: TargetKey
    endpoint: str
    credentials: Credentials = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ProjectEndpoint:
    """A project as one service serves it: the endpoint, and the credentials to ask with."""

    project_id: str
    endpoint: str
    credentials: Credentials = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class DevServerScope(ProjectEndpoint):
    """Where a project's dev servers are listed: every user's (``GET /dev-servers/all``,
    for an account with ModelArts admin rights) or the caller's own (``GET /dev-servers``);
    ``watched`` are the project's watched dev-server images, which are never counted
    together with others."""

    everyone: bool = True
    watched: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True, slots=True)
class SweepKey:
    """One list sweep: a resource kind in a project."""

    resource: Resource
    project_id: str
    _hash: int = field(init=False, repr=False, compare=False)  # as TargetKey's

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.resource, self.project_id)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Discovery:
    """Which listed objects to watch.

    ``server_type`` (dev-server images) and ``enterprise_project_id`` (image servers) are
    sent to the API; the name patterns, anchored at both ends as in Prometheus relabelling,
    are applied here.
    """

    server_type: str | None = None
    enterprise_project_id: str | None = None
    # Dev-server image discovery counts the servers of every user ("all") or the caller's.
    servers: str = "all"
    name_include: re.Pattern[str] | None = None
    name_exclude: re.Pattern[str] | None = None

    def wants(self, name: str) -> bool:
        """Whether an object of this name is watched."""
        if self.name_include is not None and not self.name_include.fullmatch(name):
            return False
        return self.name_exclude is None or not self.name_exclude.fullmatch(name)

    def query(self, resource: Resource) -> dict[str, str]:
        """The filters the list API takes, as query parameters."""
        if resource is Resource.DEVSERVER_IMAGE and self.server_type:
            return {"server_type": self.server_type}
        if resource is Resource.IMAGE_SERVER and self.enterprise_project_id:
            return {"enterprise_project_id": self.enterprise_project_id}
        return {}


@dataclass(frozen=True, slots=True)
class Sweep:
    """Every object of one kind in one project, found with list calls each cycle.

    ``configured`` are IDs also listed by hand: watched whatever the filters say, and
    asked about with a detail call when a complete sweep does not find them.
    """

    key: SweepKey
    endpoint: str
    credentials: Credentials = field(repr=False, compare=False)
    discovery: Discovery = Discovery()
    configured: tuple[str, ...] = ()

    def target(self, object_id: str) -> Target:
        """A detail-call target for one object of this sweep."""
        key = TargetKey(self.key.resource, self.key.project_id, object_id)
        return Target(key, self.endpoint, self.credentials)
