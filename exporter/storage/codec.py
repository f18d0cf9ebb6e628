"""The state file's format, validated like any other untrusted input.

The file holds each object's last state as the snapshot has it, so that a restarted
exporter serves the same series at once and keeps "since when" clocks. A file can be
edited, truncated or planted: every field is typed, every string bounded as the cloud's
are, every number finite, and an object's kind must match its resource. The schema is
TypedDicts, so that pydantic validates a file of 100,000 objects without Python code per
field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal, NotRequired

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from exporter.cloud.convert import MAX_TIME
from exporter.cloud.sanitize import MAX_LABEL, MAX_MESSAGE, clean
from exporter.domain.health import Health
from exporter.domain.jobs import DURATION_BUCKETS, Job, JobsState, SubJob
from exporter.domain.state import CloudObject, DevServerImage, ImageServer, Snapshot, TargetState
from exporter.domain.targets import PROJECT_ID_RE, Origin, Resource, TargetKey
from exporter.domain.usage import MAX_IMAGES, SERVER_STATUSES, ImageUse, UsageState
from exporter.storage.jsonstream import JsonError, read_object

VERSION = 1
SLICE = 500  # objects encoded at a time

Label = Annotated[str, StringConstraints(max_length=MAX_LABEL)]
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
    accounts: list[tuple[Annotated[str, StringConstraints(max_length=64)], int]]


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


Short = Annotated[str, StringConstraints(max_length=64)]
_STATUSES = len(SERVER_STATUSES) + 1  # and "other"
Seconds = Annotated[float, Field(allow_inf_nan=False, ge=0)]
Count = Annotated[int, Field(ge=0)]


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
    in_flight: Annotated[
        list[tuple[Short, Short, Annotated[int, Field(ge=0)]]], Field(max_length=64)
    ]
    latest: list[SubJobEntry]
    failures: Annotated[
        list[tuple[Short, Label, Annotated[int, Field(ge=0)]]], Field(max_length=4096)
    ]
    # [ID, when it ended]; a bare ID (as earlier versions wrote it) is taken as ended at
    # last_success.
    counted: list[Label | tuple[Label, Time]]
    running: list[SubJobEntry]
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


_FILE = TypeAdapter(StateFileEntry)
_TARGETS = TypeAdapter(list[TargetEntry])
# A \uD800-\uDFFF escape: half of a pair (fine) or a lone surrogate, which is not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_DEVSERVER_FIELDS = tuple(DevServerImageEntry.__annotations__)
_IMAGE_SERVER_FIELDS = tuple(ImageServerEntry.__annotations__)
_SUB_JOB_FIELDS = tuple(SubJobEntry.__annotations__)
_JOB_FIELDS = tuple(JobEntry.__annotations__)


def _entry(s: TargetState) -> dict[str, object]:
    entry: dict[str, object] = {
        "resource": s.key.resource.value, "project_id": s.key.project_id, "id": s.key.id,
        "origin": s.origin.value, "up": s.up, "exists": s.exists,
        "last_success": s.last_success, "status_since": s.status_since, "missing": s.missing,
    }  # fmt: skip
    if s.error is not None:  # an error is cut to what a reader takes
        entry["error"], entry["error_label"] = clean(s.error, MAX_MESSAGE), s.error_label
    if isinstance(s.obj, ImageServer):
        entry["image_server"] = {f: getattr(s.obj, f) for f in _IMAGE_SERVER_FIELDS}
    elif isinstance(s.obj, DevServerImage):
        entry["devserver_image"] = {f: getattr(s.obj, f) for f in _DEVSERVER_FIELDS}
    elif s.last_name:
        entry["last_name"] = s.last_name
    return entry


def _sub_job(j: SubJob) -> dict[str, object]:
    return {f: getattr(j, f) for f in _SUB_JOB_FIELDS}


def _jobs_entry(j: JobsState) -> dict[str, object]:
    entry: dict[str, object] = {
        "project_id": j.project_id, "up": j.up, "last_success": j.last_success,
        "in_flight": [[kind, status, n] for (kind, status), n in j.in_flight],
        "latest": [_sub_job(sub) for sub in j.latest],  # the largest part: keep it last
        "failures": [[kind, code, n] for (kind, code), n in j.failures],
        "counted": [[i, moment] for i, moment in j.counted],
        "running": [_sub_job(sub) for sub in j.running],
        "started": [{f: getattr(job, f) for f in _JOB_FIELDS} for job in j.started],
        "durations": [[kind, status, list(counts), total]
                      for (kind, status), (counts, total) in j.durations],
    }  # fmt: skip
    if j.error is not None:
        entry["error"], entry["error_label"] = clean(j.error, MAX_MESSAGE), j.error_label
    return entry


def _usage_entry(u: UsageState) -> dict[str, object]:
    entry: dict[str, object] = {
        "project_id": u.project_id, "up": u.up, "last_success": u.last_success,
        "objects": u.objects, "pages": u.pages, "complete": u.complete,
        "list_allowed": u.list_allowed, "unavailable_until": u.unavailable_until,
        "in_use": [[i.image_id, [list(s) for s in i.servers]] for i in u.in_use],
    }  # fmt: skip
    if u.error is not None:
        entry["error"], entry["error_label"] = clean(u.error, MAX_MESSAGE), u.error_label
    return entry


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def encode_chunks(snapshot: Snapshot, written: float) -> Iterator[bytes]:
    """The file's bytes for a snapshot's states, SLICE objects (or one project) at a time:
    whoever writes can yield between chunks, since each holds the GIL while it is made."""
    yield f'{{"version":{VERSION},"written":{_json(written)},"targets":['.encode()
    targets = snapshot.targets
    for start in range(0, len(targets), SLICE):
        part = _json([_entry(t) for t in targets[start : start + SLICE]])[1:-1]
        yield (("," if start else "") + part).encode()
    yield b'],"jobs":['
    for n, j in enumerate(snapshot.jobs):
        # A project's last jobs are one per image server: sliced like the targets.
        entry = _jobs_entry(j)
        latest = entry.pop("latest")
        assert isinstance(latest, list)
        yield (("," if n else "") + _json(entry)[:-1] + ',"latest":[').encode()
        for start in range(0, len(latest), SLICE):
            part = _json(latest[start : start + SLICE])[1:-1]
            yield (("," if start else "") + part).encode()
        yield b"]}"
    yield b'],"usage":['
    for n, u in enumerate(snapshot.usage):  # a project's images: up to MAX_IMAGES
        yield (("," if n else "") + _json(_usage_entry(u))).encode()
    yield b"]}"


def _object(entry: TargetEntry) -> CloudObject | None:
    server, image = entry.get("image_server"), entry.get("devserver_image")
    if (server if entry["resource"] is Resource.DEVSERVER_IMAGE else image) is not None:
        raise ValueError(f"a {entry['resource'].value} entry carries the other kind of object")
    if server is not None:
        s = server
        return ImageServer(
            s["name"], s["image_id"], s["image_type"], s["server_id"], s["instance_id"],
            s["server_group_id"], s["app_group_id"], s["enterprise_project_id"], s["status"],
            s["created"], s["updated"], tuple((kind, n) for kind, n in s["accounts"]),
        )  # fmt: skip
    if image is not None:
        return DevServerImage(image["name"], image["arch"], image["server_type"], image["status"])
    return None


def _health(
    e: TargetEntry | JobsEntry | UsageEntry, shared: dict[tuple[bool, float | None], Health]
) -> Health:
    """An entry's health; one object for every healthy entry of the same time, as the
    objects of one sweep share one."""
    if e.get("error") is not None:
        return Health(e["up"], e["last_success"], e.get("error"), e.get("error_label"))
    key = (e["up"], e["last_success"])
    found = shared.get(key)
    if found is None:
        found = shared[key] = Health(*key)
    return found


def _state(e: TargetEntry, shared: dict[tuple[bool, float | None], Health]) -> TargetState:
    return TargetState(
        TargetKey(e["resource"], e["project_id"], e["id"]), _health(e, shared), e["exists"],
        _object(e), e["status_since"], e["origin"], e["missing"], e.get("last_name", ""),
    )  # fmt: skip


def _jobs(e: JobsEntry) -> JobsState:
    return JobsState(
        e["project_id"], _health(e, {}),
        in_flight=tuple(((kind, status), n) for kind, status, n in e["in_flight"]),
        latest=tuple(SubJob(**sub) for sub in e["latest"]),
        failures=tuple(((kind, code), n) for kind, code, n in e["failures"]),
        counted=_counted(e["counted"], e["last_success"]),
        running=tuple(SubJob(**sub) for sub in e["running"]),
        started=tuple(Job(**job) for job in e.get("started", ())),
        durations=_durations(e.get("durations", ())),
    )  # fmt: skip


def _usage(e: UsageEntry) -> UsageState:
    return UsageState(
        e["project_id"], _health(e, {}), objects=e["objects"], pages=e["pages"],
        complete=e["complete"], list_allowed=e["list_allowed"],
        unavailable_until=e["unavailable_until"],
        in_use=tuple(ImageUse(image, tuple((status, n) for status, n in servers))
                     for image, servers in e["in_use"]),
    )  # fmt: skip


def _durations(
    entries: Iterable[tuple[str, str, list[int], float]],
) -> tuple[tuple[tuple[str, str], tuple[tuple[int, ...], float]], ...]:
    """A histogram as JobsState keeps it; one of another bucket layout (a file written with
    other buckets) is dropped, as a counter reset, rather than read wrongly."""
    width = len(DURATION_BUCKETS) + 1
    return tuple(sorted(
        ((kind, status), (tuple(counts), total))
        for kind, status, counts, total in entries
        if len(counts) == width
    ))  # fmt: skip


def _counted(
    entries: list[str | tuple[str, float]], last_success: float | None
) -> tuple[tuple[str, float], ...]:
    moments = {}
    for entry in entries:
        oid, moment = (entry, last_success or 0.0) if isinstance(entry, str) else entry
        moments[oid] = moment
    return tuple(sorted(moments.items()))


@dataclass(frozen=True, slots=True)
class Stored:
    """What a state file holds."""

    targets: tuple[TargetState, ...]
    jobs: tuple[JobsState, ...]
    usage: tuple[UsageState, ...] = ()


class Unreadable(ValueError):
    """Why a file is not a state file this exporter can read, in one phrase."""


def _why(exc: ValidationError, within: str = "", offset: int = 0) -> str:
    """What is wrong, in one phrase: the version, or the first field (its path in the file,
    an item's index counted from ``offset`` within the list ``within``)."""
    errors = exc.errors()
    for e in errors:
        if e["loc"] == ("version",):
            if e["type"] == "missing":
                return "it has no format version; it is not a state file"
            return f"it has format version {e['input']!r}; this exporter reads {VERSION}"
    first = errors[0]
    loc = list(first["loc"])
    if within:
        loc = [within, offset + int(loc[0]), *loc[1:]] if loc else [within]
    where = ".".join(str(p) for p in loc)
    return f"{where}: {first['msg']}" if where else first["msg"]


def _text(values: object) -> None:
    """Raise Unreadable when a string holds a lone surrogate (JSON can spell one; it is
    not text, and would fail the first time it is written out)."""
    try:
        json.dumps(values, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Unreadable("a string holds a lone surrogate (a \\uD800-\\uDFFF escape)") from None


def decode(data: bytes) -> Stored:
    """What a file holds; raises Unreadable when it is not a valid state file.

    The targets are read and validated SLICE at a time (see ``jsonstream``): a thread
    reading a file of 100,000 objects never holds the GIL for long."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        why = f"it is not valid JSON (truncated or corrupt?): byte {exc.start} is not UTF-8"
        raise Unreadable(why) from None
    escapes = _SURROGATE_ESCAPE.search(text) is not None
    states: list[TargetState] = []
    problems: list[str] = []
    shared: dict[tuple[bool, float | None], Health] = {}

    def targets(items: list[object]) -> None:
        if problems:
            return  # the rest is read only to find a wrong version, which is said first
        try:
            if escapes:  # rare: a name outside the basic plane, or a planted surrogate
                for n, item in enumerate(items):
                    try:
                        _text(item)
                    except Unreadable as exc:
                        problems.append(f"targets.{len(states) + n}: {exc}")
                        return
            for entry in _TARGETS.validate_python(items):
                states.append(_state(entry, shared))
        except ValidationError as exc:
            problems.append(_why(exc, "targets", len(states)))
        except ValueError as exc:  # Unreadable, or an entry whose parts disagree
            problems.append(f"targets.{len(states)}: {exc}")

    try:
        envelope = read_object(text, "targets", SLICE, targets)
    except JsonError as exc:
        raise Unreadable(f"it is not valid JSON (truncated or corrupt?): {exc}") from None
    if escapes:
        _text(envelope)
    try:
        stored = _FILE.validate_python(envelope)
    except ValidationError as exc:
        raise Unreadable(_why(exc)) from None
    if problems:
        raise Unreadable(problems[0])
    return Stored(
        tuple(states),
        tuple(_jobs(e) for e in stored.get("jobs", ())),
        tuple(_usage(e) for e in stored.get("usage", ())),
    )
