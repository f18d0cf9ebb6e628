"""State file entries into domain objects, held to the bounds live answers are held to.

The schema (``exporter.storage.schema``) has typed and bounded every field; here an entry
must also agree with itself and with what a sweep or a refresh could have made: an ID of
its resource's shape, statuses and job types among the known ones (else "other"), no
collection holding one thing twice (the first is kept), histograms of the current buckets.
What cannot be read so is refused (ValueError), and the file is set aside.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from exporter.cloud.sanitize import clean
from exporter.domain.health import Health
from exporter.domain.jobs import (
    DURATION_BUCKETS,
    ENDED_STATUSES,
    IN_FLIGHT_STATUSES,
    JOB_TYPES,
    MAX_COUNTED,
    SUB_JOB_STATUSES,
    Job,
    JobsState,
    SubJob,
)
from exporter.domain.labels import known
from exporter.domain.state import CloudObject, DevServerImage, ImageServer, TargetState
from exporter.domain.targets import DEVSERVER_IMAGE_ID_RE, IMAGE_SERVER_ID_RE, Resource, TargetKey
from exporter.domain.usage import UsageState, bounded_uses
from exporter.storage.schema import JobsEntry, SubJobEntry, TargetEntry, UsageEntry

_T = TypeVar("_T")
_K = TypeVar("_K")
_ID_SHAPES: dict[Resource, re.Pattern[str]] = {
    Resource.DEVSERVER_IMAGE: DEVSERVER_IMAGE_ID_RE,
    Resource.IMAGE_SERVER: IMAGE_SERVER_ID_RE,
}
Shared = dict[tuple[bool, float | None], Health]


def unique(items: Iterable[_T], key: Callable[[_T], _K]) -> list[_T]:
    """``items`` without those whose key was seen before."""
    seen: set[_K] = set()
    kept = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept


def state(e: TargetEntry, shared: Shared) -> TargetState:
    """One object's state; its ID must have its resource's shape."""
    resource, oid = e["resource"], e["id"]
    if not _ID_SHAPES[resource].fullmatch(oid):
        raise ValueError(f"{clean(oid, 80)!r} is not a {resource.value} ID")
    return TargetState(
        TargetKey(resource, e["project_id"], oid), _health(e, shared), e["exists"],
        _object(e), e["status_since"], e["origin"], e["missing"], e.get("last_name", ""),
    )  # fmt: skip


def jobs(e: JobsEntry) -> JobsState:
    """One project's jobs, each collection as a refresh keeps it."""
    in_flight = unique(
        (((known(kind, JOB_TYPES), known(status, IN_FLIGHT_STATUSES)), n)
         for kind, status, n in e["in_flight"]),
        lambda kn: kn[0],
    )  # fmt: skip
    failures = unique(
        (((known(kind, JOB_TYPES), code), n) for kind, code, n in e["failures"]),
        lambda kn: kn[0],
    )
    return JobsState(
        e["project_id"], _health(e, {}),
        in_flight=tuple(sorted(in_flight)),
        latest=tuple(unique(map(_sub_job, e["latest"]), lambda j: j.resource_id)),
        failures=tuple(sorted(failures)),
        counted=_counted(e["counted"], e["last_success"]),
        running=tuple(unique(map(_sub_job, e["running"]), lambda j: j.id)),
        started=tuple(unique(
            (Job(j["id"], known(j["job_type"], JOB_TYPES), known(j["status"], SUB_JOB_STATUSES),
                 j["begin"]) for j in e.get("started", ())),
            lambda j: j.id,
        )),
        durations=_durations(e.get("durations", ())),
    )  # fmt: skip


def usage(e: UsageEntry) -> UsageState:
    """One project's dev servers per image, held to a sweep's bounds."""
    return UsageState(
        e["project_id"], _health(e, {}), objects=e["objects"], pages=e["pages"],
        complete=e["complete"], list_allowed=e["list_allowed"],
        unavailable_until=e["unavailable_until"], in_use=bounded_uses(e["in_use"]),
    )  # fmt: skip


def _sub_job(e: SubJobEntry) -> SubJob:
    return SubJob(**{
        **e, "job_type": known(e["job_type"], JOB_TYPES),
        "status": known(e["status"], SUB_JOB_STATUSES),
    })  # type: ignore[arg-type]  # fmt: skip


def _object(entry: TargetEntry) -> CloudObject | None:
    server, image = entry.get("image_server"), entry.get("devserver_image")
    if (server if entry["resource"] is Resource.DEVSERVER_IMAGE else image) is not None:
        raise ValueError(f"a {entry['resource'].value} entry carries the other kind of object")
    if server is not None:
        s = server
        accounts = unique(((kind, n) for kind, n in s["accounts"]), lambda kn: kn[0])
        return ImageServer(
            s["name"], s["image_id"], s["image_type"], s["server_id"], s["instance_id"],
            s["server_group_id"], s["app_group_id"], s["enterprise_project_id"], s["status"],
            s["created"], s["updated"], tuple(accounts),
        )  # fmt: skip
    if image is not None:
        return DevServerImage(image["name"], image["arch"], image["server_type"], image["status"])
    return None


def _health(e: TargetEntry | JobsEntry | UsageEntry, shared: Shared) -> Health:
    """An entry's health; one object for every healthy entry of the same time, as the
    objects of one sweep share one."""
    if e.get("error") is not None:
        return Health(e["up"], e["last_success"], e.get("error"), e.get("error_label"))
    key = (e["up"], e["last_success"])
    found = shared.get(key)
    if found is None:
        found = shared[key] = Health(*key)
    return found


def _durations(
    entries: Iterable[tuple[str, str, list[int], float]],
) -> tuple[tuple[tuple[str, str], tuple[tuple[int, ...], float]], ...]:
    """A histogram as JobsState keeps it, one series per (job type, final status); one of
    another bucket layout (a file written with other buckets) is dropped, as a counter
    reset, rather than read wrongly."""
    width = len(DURATION_BUCKETS) + 1
    series = unique(
        (((known(kind, JOB_TYPES), known(status, ENDED_STATUSES)), (tuple(counts), total))
         for kind, status, counts, total in entries if len(counts) == width),
        lambda s: s[0],
    )  # fmt: skip
    return tuple(sorted(series))


def _counted(
    entries: list[str | tuple[str, float]], last_success: float | None
) -> tuple[tuple[str, float], ...]:
    moments = {}
    for entry in entries:
        oid, moment = (entry, last_success or 0.0) if isinstance(entry, str) else entry
        moments[oid] = moment
    newest = sorted(moments.items(), key=lambda im: (im[1], im[0]))[-MAX_COUNTED:]
    return tuple(sorted(newest))
