"""The state file's format, validated like any other untrusted input.

The file holds each object's last state as the snapshot has it, so that a restarted
exporter serves the same series at once and keeps "since when" clocks. A file can be
edited, truncated or planted: every field is typed, every string bounded again, every
number finite, and an object's kind must match its resource.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from exporter.cloud.sanitize import MAX_LABEL, clean, clean_optional
from exporter.domain.state import CloudObject, DevServerImage, ImageServer, TargetState
from exporter.domain.targets import PROJECT_ID_RE, Origin, Resource, TargetKey

VERSION = 1
_LABEL_NAME = 64  # characters of an error label (a category, not a message)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StoredTarget(_Model):
    """One object's state."""

    resource: Resource
    project_id: Annotated[str, StringConstraints(pattern=PROJECT_ID_RE.pattern)]
    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL)]
    origin: Origin
    up: bool
    exists: bool | None
    last_success: float | None
    status_since: float | None
    missing: int = Field(ge=0, le=1000)
    error: str | None = None
    error_label: str | None = None
    devserver_image: DevServerImage | None = None
    image_server: ImageServer | None = None

    @model_validator(mode="after")
    def _kind_matches(self) -> StoredTarget:
        wrong = (
            self.image_server if self.resource is Resource.DEVSERVER_IMAGE else self.devserver_image
        )
        if wrong is not None:
            raise ValueError(f"a {self.resource.value} entry carries the other kind of object")
        return self

    @classmethod
    def of(cls, s: TargetState) -> StoredTarget:
        """The entry for one state (not validated: the state is the exporter's own)."""
        return cls.model_construct(
            resource=s.key.resource, project_id=s.key.project_id, id=s.key.id,
            origin=s.origin, up=s.up, exists=s.exists, last_success=s.last_success,
            status_since=s.status_since, missing=s.missing, error=s.error,
            error_label=s.error_label,
            devserver_image=s.obj if isinstance(s.obj, DevServerImage) else None,
            image_server=s.obj if isinstance(s.obj, ImageServer) else None,
        )  # fmt: skip

    def state(self) -> TargetState:
        """The state this entry stores, every string bounded as if it came from the cloud."""
        obj = self.devserver_image or self.image_server
        return TargetState(
            TargetKey(self.resource, self.project_id, self.id),
            self.up,
            self.exists,
            None if obj is None else _bounded(obj),
            self.last_success,
            self.status_since,
            clean_optional(self.error),
            clean_optional(self.error_label, _LABEL_NAME),
            self.origin,
            self.missing,
        )


class StateFileModel(_Model):
    """The whole file."""

    version: Literal[1]
    written: float
    targets: list[StoredTarget]


def _bounded(obj: CloudObject) -> CloudObject:
    """``obj`` with every string field cleaned and cut to a label's length."""
    changes: dict[str, Any] = {
        f.name: clean(value, MAX_LABEL)
        for f in dataclasses.fields(obj)
        if isinstance(value := getattr(obj, f.name), str)
    }
    accounts = getattr(obj, "accounts", None)
    if accounts is not None:
        changes["accounts"] = tuple((clean(k, _LABEL_NAME), n) for k, n in accounts)
    return dataclasses.replace(obj, **changes)


def encode(targets: tuple[TargetState, ...], written: float) -> bytes:
    """The file's bytes for these states."""
    model = StateFileModel.model_construct(
        version=VERSION, written=written, targets=[StoredTarget.of(t) for t in targets]
    )
    return model.model_dump_json(exclude_defaults=True).encode()


def decode(data: bytes) -> StateFileModel:
    """The file's contents; raises ValueError (pydantic's ValidationError) when invalid."""
    return StateFileModel.model_validate_json(data)
