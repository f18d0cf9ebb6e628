"""Helpers shared by the benchmark and the soak run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def simulator_process(
    objects: int,
    latency: float,
    faults: bool = False,
    uvloop: bool = False,
    fleet: tuple[str, ...] = (),
) -> AsyncIterator[str]:
    """A simulator in its own process (so its CPU is not the exporter's); yields its URL.

    ``fleet`` replaces the ID fleet of ``objects`` with other fleet flags (projects)."""
    args = [*(fleet or ("--objects", str(objects))), "--latency", str(latency)]
    args += (["--faults"] if faults else []) + (["--uvloop"] if uvloop else [])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter.simulator", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=300)
    if not line:
        raise RuntimeError(f"the simulator exited ({await proc.wait()}) before it listened")
    try:
        yield str(json.loads(line)["url"])
    finally:
        proc.terminate()
        await proc.wait()


class LoopLag:
    """Measures the event loop's worst stall: how late a 5 ms sleep wakes up."""

    def __init__(self, tick: float = 0.005) -> None:
        self._tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self._tick)
            self.worst = max(self.worst, time.perf_counter() - start - self._tick)

    def start(self) -> None:
        """Begin measuring (and forget earlier stalls)."""
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> float:
        """Stop and return the worst stall in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.worst


def open_fds() -> int:
    """File descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def run_for_objects(
    doc: str, measure: Callable[[int], Coroutine[object, object, dict[str, Any]]]
) -> None:
    """The main of a benchmark of N objects: ``--objects N`` (default 100,000), then one
    JSON line of what ``measure(N)`` found."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.objects))))
