"""Does a crowd on the status page delay scrapes?

``python -m bench.statuspage`` serves a snapshot of 10,000 objects (no polling) with the
exporter's own app, measures ``/metrics`` latency from another process while idle, then
again while 20 clients load ``/`` over and over, and prints one JSON line with both p50 and
p99 and their ratio (the goal: p99 under load within 2x the idle p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aiohttp

from exporter.domain.health import Health
from exporter.domain.state import ImageServer, Snapshot, TargetState
from exporter.domain.targets import Origin, Resource, TargetKey
from exporter.exposition.live import live_registry
from exporter.exposition.store import Exposition
from exporter.web.server import build_app

PROJECT = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
STATUSES = ("ACTIVE", "ACTIVE", "BUILDING", "ERROR", "BUILT", "CREATING")


def fleet(n: int, now: float) -> Snapshot:
    """``n`` image servers in several statuses, some failing."""
    targets = []
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        obj = ImageServer(f"server {i:05d}", "img", "private", "aps", "ecs", "sg", "ag", "0",
                          status, now - 86400, now - 60, (("USER", 2),))  # fmt: skip
        up = i % 50 != 7
        health = (
            Health(True, now - 30)
            if up
            else Health(False, now - 30, "HTTP 503 WKS.0503 unavailable", "http_503")
        )
        targets.append(TargetState(
            TargetKey(Resource.IMAGE_SERVER, PROJECT, f"srv-{i:06d}"), health, True, obj,
            now - 60 * (i % 500), Origin.DISCOVERED,
        ))  # fmt: skip
    return Snapshot(tuple(targets), {}, 60.0, 1.0, now)


async def _latencies(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        async with session.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
            await resp.read()
            assert resp.status == 200
        out.append(time.perf_counter() - start)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
    }


async def client(base: str, scrapes: int, crowd: int) -> dict[str, object]:
    """The measuring side: idle scrapes, then scrapes while ``crowd`` clients load the page."""
    async with aiohttp.ClientSession() as session:
        await _latencies(session, base + "/metrics", 20)  # warm up
        idle = await _latencies(session, base + "/metrics", scrapes)
        stop = asyncio.Event()
        pages = [0]

        async def load_page() -> None:
            async with aiohttp.ClientSession() as own:
                while not stop.is_set():
                    async with own.get(base + "/") as resp:
                        await resp.read()
                    pages[0] += 1

        crowd_tasks = [asyncio.create_task(load_page()) for _ in range(crowd)]
        await asyncio.sleep(0.5)
        busy = await _latencies(session, base + "/metrics", scrapes)
        stop.set()
        await asyncio.gather(*crowd_tasks)
    idle_s, busy_s = _summary(idle), _summary(busy)
    return {
        "idle": idle_s, "with_crowd": busy_s, "crowd": crowd, "page_loads": pages[0],
        "p99_ratio": round(busy_s["p99_ms"] / idle_s["p99_ms"], 2),
    }  # fmt: skip


async def serve_and_measure(objects: int, scrapes: int, crowd: int) -> dict[str, object]:
    """The served side, in this process; the client in another, so it costs us nothing."""

    async def no_reload() -> None:
        raise RuntimeError("not in a benchmark")

    app = build_app(Exposition(live_registry(), fleet(objects, time.time())), no_reload)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.statuspage", "--client", base,
            "--scrapes", str(scrapes), "--crowd", str(crowd),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        report: dict[str, object] = json.loads(out.decode().splitlines()[-1])
    finally:
        await runner.cleanup()
    return {"objects": objects, **report}


def main() -> None:
    """Run the benchmark (or, with --client, its measuring side) and print one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.statuspage", description=__doc__)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--scrapes", type=int, default=300)
    p.add_argument("--crowd", type=int, default=20)
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        result = asyncio.run(client(args.client, args.scrapes, args.crowd))
    else:
        result = asyncio.run(serve_and_measure(args.objects, args.scrapes, args.crowd))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
