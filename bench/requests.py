"""What the requests of a cycle cost on their own: ``python -m bench.requests``.

A bare aiohttp server in another process (``bench.floor``) answers every GET with the same
bytes; this process sends ``--requests`` GETs, 64 at a time (by default a warm cycle of the
100,000-object fleet of ``bench.goals``: 1,500 calls, 1,000 of them image-server pages of
26 KB, 17 KB an answer on average, as read from the simulator), through one aiohttp
session, and reads each body in 64 KB chunks as the exporter's transport does: no signing,
no checks, no parsing. Prints one JSON line: the client's CPU per request, and what that
many requests cost per object of the cycle, the floor under the exporter's CPU per object
for as long as the client is aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.node import _child


async def measure(requests: int, page_bytes: int, objects: int) -> dict[str, Any]:
    """Send the requests and time this process's CPU."""
    floor = await _child("bench.floor")
    if floor.stdin is None or floor.stdout is None:
        raise RuntimeError("floor server has no pipes")
    floor.stdin.write(b"x" * page_bytes)
    floor.stdin.close()
    url = json.loads(await floor.stdout.readline())["url"]
    slots = asyncio.Semaphore(64)
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:

            async def get() -> int:
                async with slots, session.get(url) as resp:
                    return sum([len(c) async for c in resp.content.iter_chunked(1 << 16)])

            await asyncio.gather(*(get() for _ in range(64)))  # connections opened
            cpu = time.process_time()
            read = await asyncio.gather(*(get() for _ in range(requests)))
            cpu = time.process_time() - cpu
    finally:
        floor.terminate()
        await floor.wait()
    if any(n != page_bytes for n in read):
        raise RuntimeError("a body came back short")
    return {
        "requests": requests,
        "page_bytes": page_bytes,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "objects": objects,
        "cpu_us_per_object": round(cpu / objects * 1e6, 2),
    }


def main() -> None:
    """Measure and print one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.requests", description=__doc__)
    p.add_argument("--requests", type=int, default=1500)
    p.add_argument("--page-bytes", type=int, default=17_300)
    p.add_argument("--objects", type=int, default=100_000, help="the cycle's objects")
    args = p.parse_args()
    print(json.dumps(asyncio.run(measure(args.requests, args.page_bytes, args.objects))))


if __name__ == "__main__":
    main()
