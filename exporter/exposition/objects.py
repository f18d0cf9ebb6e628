"""The lines of the object families (each dev-server image's and image server's own),
written directly.

Building them through prometheus_client families cost about 45 µs an object, so a first
rendering (or a restore) of 100,000 objects took seconds. Each object's lines are written
here as plain strings instead, in the order and with the label order prometheus_client
gives them (label names sorted); the tests hold the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from exporter.domain.state import (
    DEVSERVER_IMAGE_STATUSES,
    IMAGE_SERVER_STATUSES,
    DevServerImage,
    ImageServer,
)
from exporter.domain.targets import TargetKey
from exporter.exposition.textformat import escape, number


def _states(name: str, ids: str, current: str, known: Sequence[str]) -> str:
    """A state set's lines, as ``families.state_set`` adds them."""
    lines = [f'{name}{{{ids},status="{s}"}} {"1.0" if s == current else "0.0"}\n' for s in known]
    if current not in known:
        lines.append(f'{name}{{{ids},status="{escape(current)}"}} 1.0\n')
    return "".join(lines)


class ObjectLines:
    """Writes an object's lines of each object family, given the families' headers (the
    dev-server images' two, then the image servers' five, as the collector yields them)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        names = [f.name for f in families]
        self._dev_info, self._dev_status = names[0] + "_info", names[1]  # info lines: name_info
        info, self._status, self._created, self._updated, self._accounts = names[2:]
        self._info = info + "_info"
        self._no_dev = (b"", b"")
        self._no_server = (b"",) * (len(names) - 2)

    def lines(self, key: TargetKey, obj: DevServerImage | ImageServer | None) -> tuple[bytes, ...]:
        """One piece per family, b"" for a family without lines for ``obj``."""
        if isinstance(obj, DevServerImage):
            return self._devserver_image(key, obj) + self._no_server
        if isinstance(obj, ImageServer):
            return self._no_dev + self._image_server(key, obj)
        return self._no_dev + self._no_server

    def _devserver_image(self, key: TargetKey, obj: DevServerImage) -> tuple[bytes, bytes]:
        i, p = escape(key.id), escape(key.project_id)
        info = (
            f'{self._dev_info}{{arch="{escape(obj.arch)}",id="{i}",name="{escape(obj.name)}",'
            f'project_id="{p}",server_type="{escape(obj.server_type)}"}} 1.0\n'
        )
        ids = f'id="{i}",project_id="{p}"'
        status = _states(self._dev_status, ids, obj.status, DEVSERVER_IMAGE_STATUSES)
        return info.encode(), status.encode()

    def _image_server(self, key: TargetKey, obj: ImageServer) -> tuple[bytes, ...]:
        i, p = escape(key.id), escape(key.project_id)
        info = (
            f'{self._info}{{app_group_id="{escape(obj.app_group_id)}",'
            f'enterprise_project_id="{escape(obj.enterprise_project_id)}",id="{i}",'
            f'image_id="{escape(obj.image_id)}",image_type="{escape(obj.image_type)}",'
            f'instance_id="{escape(obj.instance_id)}",name="{escape(obj.name)}",'
            f'project_id="{p}",server_group_id="{escape(obj.server_group_id)}",'
            f'server_id="{escape(obj.server_id)}"}} 1.0\n'
        )
        ids = f'id="{i}",project_id="{p}"'
        status = _states(self._status, ids, obj.status, IMAGE_SERVER_STATUSES)
        created = "" if obj.created is None else f"{self._created}{{{ids}}} {number(obj.created)}\n"
        updated = "" if obj.updated is None else f"{self._updated}{{{ids}}} {number(obj.updated)}\n"
        accounts = "".join(
            f'{self._accounts}{{account_type="{escape(kind)}",{ids}}} {number(float(count))}\n'
            for kind, count in obj.accounts
        )
        return tuple(s.encode() for s in (info, status, created, updated, accounts))
