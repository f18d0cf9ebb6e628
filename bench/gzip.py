"""``python -m bench.gzip``: what compressing only the changed groups saves.

Renders N image servers (default 100,000, as ``bench.statefile`` builds them), then three
quiet cycles (new last-success times, nothing else), and compresses each cycle's body twice
in one run: from scratch, as every cycle did before, and from the previous cycle's stream,
as the exporter does now. Prints one JSON line: CPU per object each way and their ratio,
and the stream's size against one-shot gzip of the same text.
"""

from __future__ import annotations

import gzip
import time
from typing import Any

from bench.common import run_for_objects
from bench.selection import next_cycle
from bench.statefile import fleet
from exporter.exposition.deflate import LEVEL
from exporter.exposition.render import render_async
from exporter.exposition.textformat import Format


async def measure(n: int) -> dict[str, Any]:
    """CPU per object of both ways, and the size against one-shot gzip."""
    first = fleet(n, time.time())
    rendered, kept = await render_async(first)
    previous = rendered.compress(Format.TEXT)
    scratch, changed = [], []
    for cycle in range(3):
        rendered, kept = await render_async(next_cycle(first, cycle), kept)
        start = time.process_time()
        rendered.compress(Format.TEXT)
        scratch.append(time.process_time() - start)
        start = time.process_time()
        previous = rendered.compress(Format.TEXT, previous)
        changed.append(time.process_time() - start)
    plain = b"".join(rendered.chunks(Format.TEXT))
    one_shot = len(gzip.compress(plain, compresslevel=LEVEL))
    return {
        "objects": n,
        "body_mb": round(len(plain) / 1e6, 1),
        "from_scratch_us_per_object": round(min(scratch) / n * 1e6, 2),
        "changed_only_us_per_object": round(min(changed) / n * 1e6, 2),
        "cpu_ratio": round(min(changed) / min(scratch), 3),
        "gzip_mb": round(previous.length / 1e6, 2),
        "one_shot_gzip_mb": round(one_shot / 1e6, 2),
        "size_ratio": round(previous.length / one_shot, 3),
    }


if __name__ == "__main__":
    run_for_objects(__doc__, measure)
