"""``python -m bench.cold``: a first rendering, as at start or after a restore.

Renders N image servers (default 100,000, as ``bench.statefile`` builds them) from
nothing, and, in the same run, builds the same objects' families the prometheus_client way
(the collector's families and their lines, as the renderer did before it wrote them
directly). Prints one JSON line: CPU per object of each, and their ratio.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import run_for_objects
from bench.statefile import fleet
from exporter.exposition.collector import SnapshotCollector
from exporter.exposition.render import render
from exporter.exposition.textformat import sample_lines


def _families(n: int) -> float:
    """CPU seconds to build and write the object families with prometheus_client."""
    snapshot = fleet(n, time.time())
    start = time.process_time()
    lines: list[str] = []
    for family in SnapshotCollector(snapshot).cloud_families(snapshot.targets):
        sample_lines(family, lines)
    return time.process_time() - start


async def measure(n: int) -> dict[str, Any]:
    """Both ways' CPU per object."""
    snapshot = fleet(n, time.time())
    start = time.process_time()
    render(snapshot)
    direct = time.process_time() - start
    reference = _families(n)
    return {
        "objects": n,
        "first_rendering_us_per_object": round(direct / n * 1e6, 2),
        "object_families_with_prometheus_client_us_per_object": round(reference / n * 1e6, 2),
        "ratio": round(direct / reference, 3),
    }


if __name__ == "__main__":
    run_for_objects(__doc__, measure)
