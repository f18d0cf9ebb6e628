"""Polled state as plain immutable data, and the rules for moving it forward one poll.

A poll cycle builds a new Snapshot from the previous one; the collector only reads them.
Nothing here knows the wire format: the client converts API answers into these types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from exporter.domain.accounts import Project
from exporter.domain.health import Health, Healthy, failed
from exporter.domain.jobs import JobsState
from exporter.domain.labels import known
from exporter.domain.targets import Origin, Resource, SweepKey, TargetKey
from exporter.domain.usage import UsageState

NULL_STATUS = "NULL"
DEVSERVER_IMAGE_STATUSES = ("ACTIVE", "INACTIVE")
IMAGE_SERVER_STATUSES = (
    "CREATING",
    "ACTIVE",
    "BUILDING",
    "BUILT",
    "ERROR",
    "DELETING",
    NULL_STATUS,
)
# Statuses that end by themselves, soon: worth polling more often than the rest.
TRANSITIONAL_STATUSES = frozenset({"CREATING", "BUILDING", "DELETING"})
ACCOUNT_TYPES = ("USER", "USER_GROUP")


# A status change seen: resource, project ID, and the statuses before and after (bounded).
Transition = tuple[Resource, str, str, str]


def known_status(resource: Resource, status: str) -> str:
    """``status`` if documented for the resource, else "other": transition counters stay
    bounded whatever the API says."""
    if resource is Resource.DEVSERVER_IMAGE:
        return known(status, DEVSERVER_IMAGE_STATUSES)
    return known(status, IMAGE_SERVER_STATUSES)


def transition(prev: TargetState | None, state: TargetState) -> Transition | None:
    """The status change from ``prev`` to ``state``, if the object was seen before and its
    status is another now."""
    if prev is None or prev.obj is None or state.obj is None or prev.obj is state.obj:
        return None
    before, after = prev.obj.status, state.obj.status
    if before == after:
        return None
    resource = state.key.resource
    return (resource, state.key.project_id, known_status(resource, before),
            known_status(resource, after))  # fmt: skip


def normalize_status(raw: str | None) -> str:
    """JSON null, a missing field, an empty string and the string "null" all mean NULL."""
    if raw is None or raw.strip() in ("", "null"):
        return NULL_STATUS
    return raw


@dataclass(frozen=True, slots=True)
class DevServerImage:
    """What the exporter keeps of a dev-server image; absent fields are empty strings."""

    name: str
    arch: str
    server_type: str
    status: str


@dataclass(frozen=True, slots=True)
class ImageServer:
    """What the exporter keeps of a Workspace image server; absent fields are empty strings."""

    name: str
    image_id: str
    image_type: str
    server_id: str
    instance_id: str
    server_group_id: str
    app_group_id: str
    enterprise_project_id: str
    status: str
    created: float | None
    updated: float | None
    accounts: tuple[tuple[str, int], ...]


CloudObject = DevServerImage | ImageServer


@dataclass(frozen=True, slots=True)
class TargetState(Healthy):
    """The exporter's knowledge of one target after its latest poll."""

    key: TargetKey
    health: Health
    exists: bool | None  # None until the API has answered once
    obj: CloudObject | None  # last known object, kept while polls fail
    status_since: float | None
    origin: Origin = Origin.CONFIGURED
    missing: int = 0  # consecutive complete sweeps that did not list this discovered object
    # The name it had when last seen, kept after a 404 (the status page shows what is gone).
    last_name: str = ""


def observe_answer(
    prev: TargetState | None,
    key: TargetKey,
    obj: CloudObject | None,
    ok: Health,
    origin: Origin = Origin.CONFIGURED,
) -> TargetState:
    """The API answered (``ok``: up, and when): ``obj`` is the object, or None after a 404.

    The objects of one sweep share one ``ok``: one Health for a thousand states."""
    if obj is None:
        name = prev.obj.name if prev is not None and prev.obj is not None else ""
        name = name or (prev.last_name if prev is not None else "")
        return TargetState(key, ok, False, None, None, origin=origin, last_name=name)
    if prev is not None and (prev.obj is obj or prev.obj == obj):
        # Keep the old, equal object: fewer new long-lived objects, fewer full GC passes.
        return _answered(key, ok, prev.obj, prev.status_since, origin)
    same = prev is not None and prev.obj is not None and prev.obj.status == obj.status
    since = prev.status_since if same and prev is not None else ok.last_success
    return TargetState(key, ok, True, obj, since, origin=origin)


# A frozen dataclass sets each field through object.__setattr__; writing the slots directly
# costs half as much, and every sweep makes a new state for each object it lists (100,000
# a cycle). The fields a state has, in order: a test holds this to the dataclass.
STATE_FIELDS = ("key", "health", "exists", "obj", "status_since", "origin", "missing", "last_name")
_KEY, _HEALTH, _EXISTS, _OBJ, _SINCE, _ORIGIN, _MISSING, _NAME = (
    getattr(TargetState, name).__set__ for name in STATE_FIELDS
)


def _answered(
    key: TargetKey, ok: Health, obj: CloudObject, since: float | None, origin: Origin
) -> TargetState:
    """``TargetState(key, ok, True, obj, since, origin=origin)``, made faster."""
    state: TargetState = object.__new__(TargetState)
    _KEY(state, key)
    _HEALTH(state, ok)
    _EXISTS(state, True)
    _OBJ(state, obj)
    _SINCE(state, since)
    _ORIGIN(state, origin)
    _MISSING(state, 0)
    _NAME(state, "")
    return state


def observe_failure(
    prev: TargetState | None,
    key: TargetKey,
    error: str,
    error_label: str,
    origin: Origin = Origin.CONFIGURED,
) -> TargetState:
    """No usable answer: keep the last known values and mark the target down."""
    if prev is None:
        return TargetState(key, failed(None, error, error_label), None, None, None, origin)
    return replace(prev, health=prev.health.failed(error, error_label))


@dataclass(frozen=True, slots=True)
class SweepState(Healthy):
    """The health of one (resource, project) list sweep after the latest cycle."""

    key: SweepKey
    health: Health
    objects: int | None  # objects the last successful sweep listed (after filters)
    pages: int  # list calls the last sweep made
    complete: bool | None  # False when the API said it left objects out
    list_allowed: bool = True  # False after 403: detail calls for configured IDs instead
    # Set when the service answered that it is not offered in this project (404 APIGW.0101):
    # it is not asked again until then.
    unavailable_until: float | None = None


class ListSweep(Protocol):
    """What is shown of any list sweep: a SweepState, or a project's dev-server sweep."""

    @property
    def health(self) -> Health: ...
    @property
    def up(self) -> bool: ...
    @property
    def last_success(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def objects(self) -> int | None: ...
    @property
    def pages(self) -> int: ...
    @property
    def complete(self) -> bool | None: ...
    @property
    def list_allowed(self) -> bool: ...
    @property
    def unavailable_until(self) -> float | None: ...


DEVSERVER_SWEEP = "devserver"  # the resource label of a project's dev-server list sweep


@dataclass(frozen=True, slots=True)
class AccountState(Healthy):
    """The health of one account's project list after its latest refresh."""

    name: str
    health: Health
    projects: int | None  # projects watched after the region and name filters


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape reports about polled state, swapped in whole after each cycle."""

    targets: tuple[TargetState, ...]
    configured: dict[Resource, int]
    interval: float
    last_poll_duration: float | None = None
    last_poll_timestamp: float | None = None
    sweeps: tuple[SweepState, ...] = ()
    api_calls: int | None = None  # list pages and detail calls of the last complete cycle
    accounts: tuple[AccountState, ...] = ()
    projects: tuple[Project, ...] = ()  # projects watched through accounts
    shard: tuple[int, int] = (0, 1)  # this process's shard: index, total
    jobs: tuple[JobsState, ...] = ()  # image build jobs of each project with image servers
    # Projects whose job counts this shard reports (None: every project's, as unsharded).
    job_counts: frozenset[str] | None = None
    # Status changes seen since the process started, by transition, of watched projects.
    transitions: tuple[tuple[Transition, int], ...] = ()
    # Dev servers per image, of each project with dev-server image discovery.
    usage: tuple[UsageState, ...] = ()

    def list_sweeps(self) -> Iterator[tuple[str, str, ListSweep]]:
        """Every list sweep as (resource label, project ID, its state): those of objects,
        then the dev-server sweeps (resource "devserver")."""
        for sw in self.sweeps:
            yield sw.key.resource.value, sw.key.project_id, sw
        for u in self.usage:
            yield DEVSERVER_SWEEP, u.project_id, u

    @property
    def ready(self) -> bool:
        """True once a poll cycle has finished."""
        return self.last_poll_timestamp is not None
