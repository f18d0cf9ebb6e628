"""``--storage.path``: the state file, read once at start and written after poll cycles.

Writing is atomic (a temporary file in the same directory, fsync, rename, fsync of the
directory), so a crash leaves the old file or the new one, never half of one. Nothing
about the file may stop the exporter: a file that cannot be read or understood is set
aside as ``PATH.bad`` with one warning and the exporter starts fresh; a write that fails
(full disk, read-only volume) is a warning and ``..._state_write_success 0``, and polling
goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from exporter.config.errors import ConfigError
from exporter.config.files import read_bytes
from exporter.domain.health import Health
from exporter.domain.state import Snapshot
from exporter.storage.codec import SLICE, Stored, Unreadable, decode, encode_chunks

log = logging.getLogger(__name__)

# 100,000 objects take 51 MB (512 bytes each), and 68 MB when every one is failing (its
# error is kept). Reading a file a slice at a time takes about five times its size in
# memory at its peak (measured: 68 MB, 100,000 objects, 2.4 s, 310 MB), so the cap keeps
# a start within some 650 MB with room for 100,000 failing objects and more; a state that
# would be larger is not written (a start would refuse it), and the last file is kept.
MAX_STATE_BYTES = 128 << 20
EMPTY = Stored((), ())
# Last-success times change every cycle; on their own they are written this seldom.
REFRESH = 300.0


class StateMetrics:
    """``huaweicloud_image_exporter_state_*``: registered only when a state file is used."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.write_success = Gauge(
            "huaweicloud_image_exporter_state_write_success",
            "Whether the last write of the state file (--storage.path) succeeded (1) or "
            "failed (0).",
            registry=registry,
        )
        self.last_write = Gauge(
            "huaweicloud_image_exporter_state_last_write_timestamp_seconds",
            "When the state file was last written successfully.",
            registry=registry,
        )
        self.restored = Gauge(
            "huaweicloud_image_exporter_state_restored_targets",
            "Objects whose state was read from the state file at start.",
            registry=registry,
        )


async def _durable(snapshot: Snapshot) -> list[list[Hashable]]:
    """What must survive a restart, without the times that change every cycle, in slices
    (yielding to the loop between them).

    Dev servers per image are left out: in a large fleet some server starts or stops every
    cycle, and rewriting the whole file for that would make writes continual. They ride
    along with the next write (at most REFRESH old), which is enough to serve their series
    at once after a restart; the first cycle lists them again."""
    targets = snapshot.targets
    parts: list[list[Hashable]] = []
    for start in range(0, len(targets), SLICE):
        parts.append([
            (t.key, t.up, t.exists, t.obj, t.status_since, t.error_label, t.origin, t.missing)
            for t in targets[start : start + SLICE]
        ])  # fmt: skip
        await asyncio.sleep(0)
    parts.append(
        [replace(j, health=Health(j.up, None, None, j.error_label)) for j in snapshot.jobs]
    )
    return parts


async def _same(new: list[list[Hashable]], old: list[list[Hashable]] | None) -> bool:
    """Whether two _durable() results are equal, comparing a slice at a time."""
    if old is None or len(new) != len(old):
        return False
    for a, b in zip(new, old, strict=True):
        if a != b:
            return False
        await asyncio.sleep(0)
    return True


class StateFile:
    """Reads and writes one state file; the only code that touches it."""

    def __init__(
        self, path: str | os.PathLike[str], registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self._clock = clock
        self._metrics = StateMetrics(registry)
        self._written: list[list[Hashable]] | None = None  # the file, as _durable() has it
        self._written_at = 0.0
        self._failing = False
        self._lock = asyncio.Lock()

    def load(self) -> Stored:
        """What the file holds; nothing when there is no usable file. Whatever is wrong
        with it, the exporter starts: a bad file is set aside, never a reason to crash."""
        if self.path.is_dir():
            log.warning(
                "--storage.path %s is a directory, not a file: starting fresh, and writing "
                "fails until it names a file (for example %s)",
                self.path, self.path / "state.json",
            )  # fmt: skip
            return EMPTY
        try:
            data = read_bytes(self.path, MAX_STATE_BYTES, "--storage.path")
        except ConfigError as exc:
            if not self.path.exists() and not self.path.is_symlink():
                log.info("no state file yet; starting fresh", extra={"path": str(self.path)})
                return EMPTY
            return self.set_aside(exc.problems[0])
        if not data:
            return self.set_aside("the file is empty")
        try:
            stored = decode(data)
        except Unreadable as exc:
            return self.set_aside(str(exc))
        except Exception as exc:  # OverflowError, RecursionError, ...: still not ours to crash on
            return self.set_aside(f"{type(exc).__name__}: {exc}"[:200])
        self._metrics.restored.set(len(stored.targets))
        log.info(
            "state read",
            extra={
                "path": str(self.path),
                "targets": len(stored.targets),
                "projects_with_jobs": len(stored.jobs),
                "projects_with_dev_servers": len(stored.usage),
            },
        )
        return stored

    def set_aside(self, why: str) -> Stored:
        """Move the file aside for inspection, saying ``why`` it is unusable; nothing is
        restored from it."""
        aside = self.path.with_name(self.path.name + ".bad")
        try:
            os.replace(self.path, aside)
            kept = f"; it was moved to {aside} for inspection"
        except OSError as exc:
            kept = f"; it could not be moved aside ({exc.strerror or exc}) and will be replaced"
        log.warning(
            "state file %s is unusable (%s): starting fresh%s", self.path, why, kept,
        )  # fmt: skip
        return EMPTY

    async def save(self, snapshot: Snapshot) -> None:
        """Write the snapshot's states when they changed since the last write (or when the
        last write is older than REFRESH); a failure is logged and counted, never raised.

        Comparing and encoding run on the loop a slice at a time (in a thread they would
        hold the GIL for a second at 100,000 objects, stalling scrapes just the same);
        only the file's I/O runs in a thread."""
        async with self._lock:
            now = self._clock()
            durable = await _durable(snapshot)
            if await _same(durable, self._written) and now - self._written_at < REFRESH:
                return
            chunks = []
            for chunk in encode_chunks(snapshot, now):
                chunks.append(chunk)
                await asyncio.sleep(0)
            ok = await asyncio.to_thread(self._write_reporting, chunks)
            if ok:
                self._written, self._written_at = durable, now
                self._metrics.last_write.set(now)

    def _write_reporting(self, chunks: list[bytes]) -> bool:
        """Write; True on success, False (logged once, counted) on failure."""
        size = sum(len(c) for c in chunks)
        try:
            if size > MAX_STATE_BYTES:  # a file the next start would refuse to read
                raise OSError(
                    f"the state is {size} bytes, over the {MAX_STATE_BYTES} a start reads "
                    "back; the last file is kept (shard to watch fewer objects per process)"
                )
            self._write(chunks)
        except OSError as exc:
            self._metrics.write_success.set(0)
            if not self._failing:
                log.warning(
                    "cannot write the state file %s: %s; polling goes on, and a restart "
                    "now would lose state",
                    self.path,
                    exc.strerror or exc,
                )
            self._failing = True
            return False
        if self._failing:
            log.info("state file written again", extra={"path": str(self.path)})
        self._failing = False
        self._metrics.write_success.set(1)
        return True

    def _write(self, chunks: list[bytes]) -> None:
        """Replace the file atomically; mkstemp creates the temporary file with mode 0600."""
        directory = self.path.parent
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.writelines(chunks)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
