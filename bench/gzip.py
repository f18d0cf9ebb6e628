"""``python -m bench.gzip``: what holding the body deflated, piece by piece, costs and saves.

Renders N image servers (default 100,000, as ``bench.statefile`` builds them), then three
quiet cycles (new last-success times, nothing else). Each cycle is measured in one run two
ways: as the exporter does it (render, deflating the pieces written, and assemble the gzip
stream from the previous one) and what compressing the whole body again costs on its own
(as every cycle did before). Prints one JSON line: CPU per object each way and their ratio,
the stream's size against one-shot gzip of the same text, and the bytes the body holds.
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
    """CPU per object of both ways, and the sizes."""
    first = fleet(n, time.time())
    rendered, kept = await render_async(first)
    previous = rendered.compress(Format.TEXT)
    whole, pieces = [], []
    for cycle in range(3):
        snapshot = next_cycle(first, cycle)
        start = time.process_time()
        rendered, kept = await render_async(snapshot, kept)
        previous = rendered.compress(Format.TEXT, previous)
        pieces.append(time.process_time() - start)
        plain = b"".join(rendered.chunks(Format.TEXT))
        start = time.process_time()
        gzip.compress(plain, compresslevel=LEVEL)
        whole.append(time.process_time() - start)
    one_shot = len(gzip.compress(plain, compresslevel=LEVEL))
    held = sum(len(p.data) for s in rendered.sections for p in s.pieces)
    return {
        "objects": n,
        "body_mb": round(len(plain) / 1e6, 1),
        "held_mb": round(held / 1e6, 2),
        "compress_whole_us_per_object": round(min(whole) / n * 1e6, 2),
        "render_and_assemble_us_per_object": round(min(pieces) / n * 1e6, 2),
        "cpu_ratio": round(min(pieces) / min(whole), 3),
        "gzip_mb": round(previous.length / 1e6, 2),
        "one_shot_gzip_mb": round(one_shot / 1e6, 2),
        "size_ratio": round(previous.length / one_shot, 3),
    }


if __name__ == "__main__":
    run_for_objects(__doc__, measure)
