"""Reloading the configuration when its file's content changes, as Prometheus' config
reloader does for a mounted ConfigMap: Kubernetes swaps the file in through a symlink, and
nothing signals the process.

The file is read (bounded, in a thread) every ``interval``; when its bytes differ from those
last seen, the exporter reloads, exactly as after SIGHUP or ``POST /-/reload``, and the
reload metrics say how it went. A content that was rejected is not tried again until it
changes: a bad edit is one error, not one every interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable

from exporter.config.errors import ConfigError
from exporter.config.files import MAX_CONFIG_BYTES, read_bytes

log = logging.getLogger(__name__)


class ConfigWatcher:
    """Watches one configuration file for new content."""

    def __init__(
        self, path: str | os.PathLike[str], reload: Callable[[], Awaitable[None]], interval: float
    ) -> None:
        self._path = path
        self._reload = reload
        self._interval = interval
        # What the configuration just loaded was read from (a small file, read once here).
        self._seen: bytes | None = self._digest()

    async def run(self) -> None:
        """Check every interval, for ever (the exporter cancels it when it stops)."""
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> None:
        """Reload if the file's content is new since it was last seen."""
        digest = await asyncio.to_thread(self._digest)
        if digest is None or digest == self._seen:
            return  # unreadable for a moment (a swap in progress), or unchanged
        self._seen = digest
        log.info("the configuration file changed; reloading", extra={"path": str(self._path)})
        # A rejected file is said by reload(), and tried again when its content changes.
        with contextlib.suppress(ConfigError):
            await self._reload()

    def _digest(self) -> bytes | None:
        try:
            return hashlib.sha256(read_bytes(self._path, MAX_CONFIG_BYTES, "config file")).digest()
        except ConfigError:
            return None
