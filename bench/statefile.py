"""``python -m bench.statefile``: what the state file (``--storage.path``) costs.

Writes and reads the state of N image servers (default 100,000, each with its last build
job) through the real StateFile, and measures, in one run: bytes per object, the write and
the read at start, and how long the event loop stalls while a write runs in its thread
(the exporter keeps serving scrapes meanwhile). Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.common import run_for_objects
from exporter.domain.health import Health
from exporter.domain.jobs import JobsState, SubJob
from exporter.domain.state import ImageServer, Snapshot, TargetState
from exporter.domain.targets import Origin, Resource, TargetKey
from exporter.storage.statefile import StateFile

PROJECT = "0123456789abcdef0123456789abcdef"


def fleet(n: int, now: float) -> Snapshot:
    """N discovered image servers with realistic fields, and one project's jobs."""

    def server(i: int) -> TargetState:
        obj = ImageServer(f"server srv-{i:06d}", "img-1", "private", "aps-1", "ecs-1", "sg-1",
                          "ag-1", "0", "ACTIVE", now - 86_400, now - 3_600,
                          (("USER", 2), ("USER_GROUP", 1)))  # fmt: skip
        key = TargetKey(Resource.IMAGE_SERVER, PROJECT, f"srv-{i:06d}")
        return TargetState(key, ok, True, obj, now - 3_600, origin=Origin.DISCOVERED)

    def job(i: int) -> SubJob:
        return SubJob(f"sj-{i}", f"job-{i}", "BUILD_IMAGE", f"srv-{i:06d}", "", "SUCCESS",
                      "", "", now - 7_200, now - 3_600)  # fmt: skip

    ok = Health(True, now)
    targets = tuple(server(i) for i in range(n))
    latest = tuple(job(i) for i in range(0, n, 10))
    return Snapshot(targets, {}, 60.0, jobs=(JobsState(PROJECT, ok, latest=latest),))


async def measure(n: int) -> dict[str, float]:
    now = time.time()
    snapshot = fleet(n, now)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        store = StateFile(path, CollectorRegistry())
        stalls: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                stalls.append(time.perf_counter() - started - 0.001)

        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        await store.save(snapshot)
        write = time.perf_counter() - started
        done.set()
        await tick
        size = path.stat().st_size
        started = time.perf_counter()
        stored = StateFile(path, CollectorRegistry()).load()
        read = time.perf_counter() - started
        assert len(stored.targets) == n
        growth = _read_growth(path)
    return {
        "objects": n,
        "bytes_per_object": round(size / n, 1),
        "write_s": round(write, 2),
        "read_s": round(read, 2),
        "worst_loop_stall_ms_during_write": round(max(stalls) * 1000, 1),
        # How much a fresh process grows (peak RSS) reading the file, per byte of it.
        "read_growth_per_file_byte": round(growth / size, 1),
    }


# The peak is the kernel's high-water mark of this process's memory (VmHWM, kept per
# address space: ru_maxrss would carry over the parent's through fork and exec).
_READER = """
import sys
from prometheus_client import CollectorRegistry
from exporter.storage.statefile import StateFile
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
before = kib("VmRSS:")
StateFile(sys.argv[1], CollectorRegistry()).load()
print((kib("VmHWM:") - before) * 1024)
"""


def _read_growth(path: Path) -> int:
    """Bytes a fresh process's peak RSS grows by while it reads the file."""
    out = subprocess.run(
        [sys.executable, "-c", _READER, str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def main() -> None:
    """Measure and print one JSON line."""
    run_for_objects(__doc__ or "", measure)


if __name__ == "__main__":
    main()
