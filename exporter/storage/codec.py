"""The state file's format: what is written, and reading it back like any other untrusted
input.

The file holds each object's last state as the snapshot has it, so that a restarted
exporter serves the same series at once and keeps "since when" clocks. A file can be
edited, truncated or planted: its schema (``exporter.storage.schema``) bounds every field,
and its entries become domain objects only within the bounds live answers are held to
(``exporter.storage.restore``); anything else makes the whole file unreadable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from exporter.cloud.sanitize import MAX_MESSAGE, clean
from exporter.domain.jobs import JobsState, SubJob
from exporter.domain.state import DevServerImage, ImageServer, Snapshot, TargetState
from exporter.domain.targets import TargetKey
from exporter.domain.usage import UsageState
from exporter.storage import restore
from exporter.storage.jsonstream import JsonError, read_object
from exporter.storage.schema import (
    VERSION,
    DevServerImageEntry,
    ImageServerEntry,
    JobEntry,
    JobsEntry,
    StateFileEntry,
    SubJobEntry,
    TargetEntry,
    UsageEntry,
)

_E = TypeVar("_E", JobsEntry, UsageEntry)

SLICE = 500  # objects encoded at a time

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


def _projects(entries: Iterable[_E]) -> list[_E]:
    return restore.unique(entries, lambda e: e["project_id"])


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
    shared: restore.Shared = {}
    keys: set[TargetKey] = set()

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
                s = restore.state(entry, shared)
                if s.key not in keys:  # an object written twice is read once
                    keys.add(s.key)
                    states.append(s)
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
        tuple(restore.jobs(e) for e in _projects(stored.get("jobs", ()))),
        tuple(restore.usage(e) for e in _projects(stored.get("usage", ()))),
    )
