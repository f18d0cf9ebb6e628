"""How long rendering the dev-server usage family takes, first and again.

``python -m bench.render`` renders a snapshot holding only dev-server usage (``--projects``
projects of ``--images`` images, each run by servers in two statuses), then renders it
again ``--repeats`` times with new but equal tuples, as each cycle's sweep makes them, each
time handing over what the previous rendering kept. It prints one JSON line: the first
rendering and the fastest repeat, in milliseconds, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from exporter.domain.health import Health
from exporter.domain.state import Snapshot
from exporter.domain.usage import ImageUse, UsageState
from exporter.exposition.render import render_async


def usage(projects: int, images: int, stamp: float) -> Snapshot:
    """A snapshot of ``projects`` projects' usage, built afresh (equal for any ``stamp``
    but its sweep times)."""
    counts = (("RUNNING", 2), ("STOPPED", 1))
    return Snapshot((), {}, 60.0, usage=tuple(
        UsageState(f"project{p:05d}", Health(True, stamp), objects=3 * images, pages=1,
                   complete=True,
                   in_use=tuple(ImageUse(f"image-{p}-{i}", counts, True) for i in range(images)))
        for p in range(projects)
    ))  # fmt: skip


async def measure(projects: int, images: int, repeats: int) -> dict[str, float]:
    """The first rendering's time and the fastest of ``repeats`` renderings again."""
    start = time.perf_counter()
    _, kept = await render_async(usage(projects, images, 1.0))
    first = time.perf_counter() - start
    again = []
    for n in range(repeats):
        snapshot = usage(projects, images, 2.0 + n)
        start = time.perf_counter()
        _, kept = await render_async(snapshot, kept)
        again.append(time.perf_counter() - start)
    best = min(again)
    return {
        "projects": projects, "images": images, "series": projects * images * 2,
        "first_ms": round(first * 1000, 2), "again_ms": round(best * 1000, 2),
        "first_over_again": round(first / best, 1),
    }  # fmt: skip


def main() -> None:
    """Parse the flags, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.projects, args.images, args.repeats))))


if __name__ == "__main__":
    main()
