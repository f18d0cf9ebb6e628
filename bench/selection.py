"""``python -m bench.selection``: what ``--metric-denylist`` saves, per object.

Renders the snapshot of N image servers (default 100,000, as ``bench.statefile`` builds
them) cold, then again as each cycle does (every object's last success time new, nothing
else changed) with its gzip stream, once serving every family and once with the
timestamp families denied (``--metric-denylist='.*_timestamp_seconds'``), in one run.
Prints one JSON line: series per object, the body's bytes, and CPU per object cold and
warm, for each, and the ratios.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from bench.common import run_for_objects
from bench.statefile import fleet
from exporter.domain.health import Health
from exporter.domain.state import Snapshot
from exporter.exposition.render import render_async
from exporter.exposition.selection import ALL, Selection
from exporter.exposition.textformat import Format

DENIED = Selection.parse(".*_timestamp_seconds", allow=False)


def next_cycle(first: Snapshot, cycle: int) -> Snapshot:
    """``first`` as a quiet cycle later sees it: every last success new, nothing else."""
    ok = Health(True, time.time() + 60 * (cycle + 1))
    return replace(first, targets=tuple(replace(t, health=ok) for t in first.targets))


async def _one(n: int, select: Selection) -> dict[str, float]:
    now = time.time()
    first = fleet(n, now)
    start = time.process_time()
    rendered, kept = await render_async(first, select=select)
    cold = time.process_time() - start
    made = rendered.compress(Format.TEXT)
    series = sum(
        1 for chunk in rendered.chunks(Format.TEXT) for line in chunk.split(b"\n")
        if line and not line.startswith(b"#") and b"srv-000000\"" in line
    )  # fmt: skip
    warm = []
    for cycle in range(3):
        again = next_cycle(first, cycle)
        start = time.process_time()
        rendered, kept = await render_async(again, kept, select)
        made = rendered.compress(Format.TEXT, made)
        warm.append(time.process_time() - start)
    return {
        "series_per_object": series,
        "body_bytes": rendered.size(Format.TEXT),
        "cold_us_per_object": round(cold / n * 1e6, 2),
        "warm_us_per_object": round(min(warm) / n * 1e6, 2),
    }


async def measure(n: int) -> dict[str, Any]:
    """Both selections' costs and their ratios."""
    every = await _one(n, ALL)
    denied = await _one(n, DENIED)
    return {
        "objects": n, "all": every, "denied_timestamps": denied,
        **{f"{k}_ratio": round(denied[k] / every[k], 2) for k in every},
    }  # fmt: skip


if __name__ == "__main__":
    run_for_objects(__doc__, measure)
