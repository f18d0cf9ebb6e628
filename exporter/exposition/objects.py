"""The lines of the object families (each dev-server image's and image server's own),
written directly.

Building them through prometheus_client families cost about 45 µs an object, so a first
rendering (or a restore) of 100,000 objects took seconds. Each object's lines are written
here as plain strings instead, in the order and with the label order prometheus_client
gives them (label names sorted); the tests hold the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

from prometheus_client.metrics_core import Metric

from exporter.domain.state import (
    DEVSERVER_IMAGE_STATUSES,
    IMAGE_SERVER_STATUSES,
    DevServerImage,
    ImageServer,
)
from exporter.domain.targets import TargetKey
from exporter.exposition.textformat import escape, needs_escape, number


@cache
def _ends(known: tuple[str, ...], current: str) -> tuple[str, ...]:
    """What follows ``status="`` in each line of a state set whose state is ``current``
    (one of ``known``): a few dozen, made once."""
    return tuple(f'{s}"}} {"1.0" if s == current else "0.0"}\n' for s in known)


def _states(name: str, ids: str, current: str, known: tuple[str, ...]) -> str:
    """A state set's lines, as ``families.state_set`` adds them."""
    head = f'{name}{{{ids},status="'
    if current in known:
        return head + head.join(_ends(known, current))  # each line is head + its end
    ends = [*_ends(known, ""), f'{escape(current)}"}} 1.0\n']
    return head + head.join(ends)


@lru_cache(maxsize=1024)
def _count(count: int) -> str:
    """A count as prometheus_client writes it (accounts repeat a few small numbers)."""
    return number(float(count))


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
        values: tuple[str, ...] = (
            obj.app_group_id, obj.enterprise_project_id, key.id, obj.image_id, obj.image_type,
            obj.instance_id, obj.name, key.project_id, obj.server_group_id, obj.server_id,
        )  # fmt: skip
        if needs_escape("".join(values)):  # one look at them all, as they seldom need it
            values = tuple(map(escape, values))
        agi, epi, i, iid, itype, inst, name, p, sgi, sid = values
        info = (
            f'{self._info}{{app_group_id="{agi}",enterprise_project_id="{epi}",id="{i}",'
            f'image_id="{iid}",image_type="{itype}",instance_id="{inst}",name="{name}",'
            f'project_id="{p}",server_group_id="{sgi}",server_id="{sid}"}} 1.0\n'
        )
        ids = f'id="{i}",project_id="{p}"'
        status = _states(self._status, ids, obj.status, IMAGE_SERVER_STATUSES)
        created = "" if obj.created is None else f"{self._created}{{{ids}}} {number(obj.created)}\n"
        updated = "" if obj.updated is None else f"{self._updated}{{{ids}}} {number(obj.updated)}\n"
        accounts = "".join(
            f'{self._accounts}{{account_type="{escape(kind)}",{ids}}} {_count(count)}\n'
            for kind, count in obj.accounts
        )
        return tuple(s.encode() for s in (info, status, created, updated, accounts))
