"""What the exporter polls: one object of one resource kind in one project."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from exporter.domain.credentials import Credentials


class Resource(enum.StrEnum):
    """The two kinds of object the exporter watches; the value is the ``resource`` label."""

    DEVSERVER_IMAGE = "devserver_image"
    IMAGE_SERVER = "image_server"


@dataclass(frozen=True, slots=True)
class TargetKey:
    """Identifies a polled object; the same triple labels all of its series."""

    resource: Resource
    project_id: str
    id: str


@dataclass(frozen=True, slots=True)
class Target:
    """A configured object with the endpoint that serves it and the credentials to ask with."""

    key: TargetKey
    endpoint: str
    credentials: Credentials = field(repr=False, compare=False)

    @property
    def path(self) -> str:
        """The detail API path of this object (IDs are validated, so no escaping is needed)."""
        if self.key.resource is Resource.DEVSERVER_IMAGE:
            return f"/v1/{self.key.project_id}/dev-servers/images/{self.key.id}"
        return f"/v1/{self.key.project_id}/image-servers/{self.key.id}"
