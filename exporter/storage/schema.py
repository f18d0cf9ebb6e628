"""The state file's schema: every field typed, every string bounded as the cloud's are,
every number finite and bounded, every list of bounded length. TypedDicts, so that pydantic
validates a file of 100,000 objects without Python code per field; what a field's value
must also agree with (an ID's shape, a status among the known ones, no duplicates) is
checked where the entries become domain objects (``exporter.storage.restore``)."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, StringConstraints, with_config
from typing_extensions import TypedDict

from exporter.cloud.convert import MAX_TIME
from exporter.cloud.sanitize import MAX_LABEL, MAX_MESSAGE
from exporter.domain.jobs import MAX_COUNTED
from exporter.domain.targets import PROJECT_ID_RE, Origin, Resource
from exporter.domain.usage import MAX_IMAGES, SERVER_STATUSES

VERSION = 1
Label = Annotated[str, StringConstraints(max_length=MAX_LABEL)]
Short = Annotated[str, StringConstraints(max_length=64)]
# Every count is an integer a float holds exactly: rendering turns counts into floats, and
# 10**400 cannot be one (it crashed every start).
MAX_COUNT = 2**53
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# Seconds summed over sub-jobs: finite, and far below where a float loses whole seconds.
Seconds = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e15)]
# Unix seconds up to 2100: what the exporter writes is always within this (the clock, and
# times from the cloud, which convert bounds the same way), so it always reads it back.
Time = Annotated[float, Field(allow_inf_nan=False, ge=0, le=MAX_TIME)]
_STRICT = ConfigDict(extra="forbid")


@with_config(_STRICT)
class DevServerImageEntry(TypedDict):
    """A dev-server image's fields."""

    name: Label
    arch: Label
    server_type: Label
    status: Label


@with_config(_STRICT)
class ImageServerEntry(TypedDict):
    """An image server's fields."""

    name: Label
    image_id: Label
    image_type: Label
    server_id: Label
    instance_id: Label
    server_group_id: Label
    app_group_id: Label
    enterprise_project_id: Label
    status: Label
    created: Time | None
    updated: Time | None
    accounts: Annotated[list[tuple[Short, Count]], Field(max_length=64)]


@with_config(_STRICT)
class TargetEntry(TypedDict):
    """One object's state."""

    resource: Resource
    project_id: Annotated[str, StringConstraints(pattern=PROJECT_ID_RE.pattern)]
    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL)]
    origin: Origin
    up: bool
    exists: bool | None
    last_success: Time | None
    status_since: Time | None
    missing: Annotated[int, Field(ge=0, le=1000)]
    error: NotRequired[Annotated[str, StringConstraints(max_length=MAX_MESSAGE)] | None]
    error_label: NotRequired[Annotated[str, StringConstraints(max_length=64)] | None]
    devserver_image: NotRequired[DevServerImageEntry]
    image_server: NotRequired[ImageServerEntry]
    last_name: NotRequired[Label]  # of an object that is gone


_STATUSES = len(SERVER_STATUSES) + 1  # and "other"


@with_config(_STRICT)
class SubJobEntry(TypedDict):
    """A sub-job."""

    id: Label
    job_id: Label
    job_type: Short
    resource_id: Label
    resource_name: Label
    status: Short
    error_code: Label
    error_message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
    begin: Time | None
    end: Time | None


@with_config(_STRICT)
class JobEntry(TypedDict):
    """A job WAITING or RUNNING."""

    id: Label
    job_type: Short
    status: Short
    begin: Time | None


@with_config(_STRICT)
class JobsEntry(TypedDict):
    """One project's jobs."""

    project_id: Annotated[str, StringConstraints(pattern=PROJECT_ID_RE.pattern)]
    up: bool
    last_success: Time | None
    in_flight: Annotated[list[tuple[Short, Short, Count]], Field(max_length=64)]
    latest: list[SubJobEntry]
    failures: Annotated[list[tuple[Short, Label, Count]], Field(max_length=4096)]
    # [ID, when it ended]; a bare ID (as earlier versions wrote it) is taken as ended at
    # last_success.
    counted: Annotated[list[Label | tuple[Label, Time]], Field(max_length=MAX_COUNTED)]
    running: Annotated[list[SubJobEntry], Field(max_length=MAX_COUNTED)]
    started: NotRequired[Annotated[list[JobEntry], Field(max_length=4096)]]
    # [job_type, status, [sub-jobs per bucket, as DURATION_BUCKETS and one past], sum]
    durations: NotRequired[
        Annotated[
            list[tuple[Short, Short, Annotated[list[Count], Field(max_length=64)], Seconds]],
            Field(max_length=4096),
        ]
    ]
    error: NotRequired[Annotated[str, StringConstraints(max_length=MAX_MESSAGE)] | None]
    error_label: NotRequired[Short | None]


@with_config(_STRICT)
class UsageEntry(TypedDict):
    """One project's dev servers per image (whether the exporter watches each image is not
    kept: it is worked out again from the objects read)."""

    project_id: Annotated[str, StringConstraints(pattern=PROJECT_ID_RE.pattern)]
    up: bool
    last_success: Time | None
    objects: Count | None
    pages: Count
    complete: bool | None
    list_allowed: bool
    unavailable_until: Time | None
    # [image ID, [[server status, servers], ...]], as many as the poller keeps
    in_use: Annotated[
        list[tuple[Label, Annotated[list[tuple[Short, Count]], Field(max_length=_STATUSES)]]],
        Field(max_length=MAX_IMAGES + 1),
    ]
    error: NotRequired[Annotated[str, StringConstraints(max_length=MAX_MESSAGE)] | None]
    error_label: NotRequired[Short | None]


@with_config(_STRICT)
class StateFileEntry(TypedDict):
    """The whole file."""

    version: Literal[1]
    written: Time
    targets: list[TargetEntry]
    jobs: NotRequired[list[JobsEntry]]
    usage: NotRequired[list[UsageEntry]]
