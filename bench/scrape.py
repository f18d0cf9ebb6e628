"""Scrape load in its own process: ``python -m bench.scrape URL --concurrency 8 --seconds 10``.

Prints one JSON line of latencies (seconds), measured from request start to the last body
byte, with Prometheus' own Accept and Accept-Encoding headers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}


async def scrape(url: str, concurrency: int, seconds: float, rate: float = 0.0) -> dict[str, float]:
    """Scrape with ``concurrency`` clients for ``seconds`` (each at most ``rate`` per second
    if given, else back to back); summarise the latencies."""
    latencies: list[float] = []
    failures = 0
    size = 0
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal failures, size
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                async with session.get(url, headers=PROMETHEUS_HEADERS) as r:
                    body = await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
                size = len(body)
            else:
                failures += 1
            if rate:
                await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - start)))

    # Bodies stay compressed, as Prometheus would read them off the wire.
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    latencies.sort()
    return {
        "count": len(latencies),
        "failures": failures,
        "bytes": size,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max": latencies[-1],
    }


def main() -> None:
    """Run and print the summary."""
    p = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    p.add_argument("url")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.0, help="per client, per second (0: no pause)")
    args = p.parse_args()
    print(json.dumps(asyncio.run(scrape(args.url, args.concurrency, args.seconds, args.rate))))


if __name__ == "__main__":
    main()
