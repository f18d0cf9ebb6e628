"""Soak run: many targets, mixed faults, a 1-second interval and concurrent scrapes.

    python -m bench.soak --targets 1000 --interval 1 --minutes 5

Reports RSS, open file descriptors and asyncio task count after a warm-up and at the end,
and how many scrapes failed; exits non-zero if anything grew beyond noise or a scrape
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time

import aiohttp
import psutil

from bench.common import LoopLag, open_fds, simulator_process
from exporter.config.settings import PollSettings, Settings
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator.fleet import fleet_targets

# Requests in flight, and so the most keep-alive connections the client pool holds: open
# file descriptors move within that range as connections are closed (timeouts, resets) and
# reopened, without that being a leak.
POOL = 64
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "Accept-Encoding": "gzip",
}


def requests_sent(exporter: Exporter) -> float:
    """All API requests the exporter has sent so far."""
    family = next(iter(exporter.api_metrics.requests.collect()))
    return sum(s.value for s in family.samples if s.name.endswith("_total"))


async def sample(window: float = 3.0) -> dict[str, float]:
    """Baseline counts: the minimum over a window, i.e. between cycles, when no poll
    workers or in-flight connections are counted; RSS after a full collection."""
    tasks = fds = 1 << 30
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        tasks = min(tasks, len(asyncio.all_tasks()))
        fds = min(fds, open_fds())
        await asyncio.sleep(0.02)
    gc.collect()
    return {"rss_mb": psutil.Process().memory_info().rss / 2**20, "open_fds": fds, "tasks": tasks}


async def soak(args: argparse.Namespace) -> dict[str, object]:
    async with simulator_process(args.targets, args.latency, faults=True) as url:
        settings = Settings(
            poll=PollSettings(
                interval=args.interval, timeout=args.interval * 0.5, concurrency=POOL, retries=1
            ),
            targets=fleet_targets(url, args.targets),
        )
        exporter = Exporter(settings)
        await exporter.start(ListenAddress("127.0.0.1", 0))
        base = f"http://127.0.0.1:{exporter.addresses[0][1]}/metrics"
        scrapes = failures = 0
        stop = asyncio.Event()
        lag = LoopLag()

        async def scraper(session: aiohttp.ClientSession, headers: dict[str, str]) -> None:
            nonlocal scrapes, failures
            while not stop.is_set():
                try:
                    async with session.get(base, headers=headers) as r:
                        body = await r.read()
                        ok = r.status == 200 and len(body) > 0
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                scrapes += 1
                failures += 0 if ok else 1
                await asyncio.sleep(0.1)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            tasks = [
                asyncio.create_task(scraper(session, h))
                for h in (PROMETHEUS_HEADERS, {}, PROMETHEUS_HEADERS)
            ]
            await asyncio.sleep(args.warmup)
            start = await sample()
            lag.start()
            started = time.monotonic()
            before = requests_sent(exporter)
            trend = [start]
            for _ in range(max(1, round(args.minutes))):
                await asyncio.sleep(args.minutes * 60 / max(1, round(args.minutes)))
                trend.append(await sample(window=1.0))
            worst_stall = await lag.stop()
            end = await sample()
            stop.set()
            await asyncio.gather(*tasks)
        await exporter.stop()
        requests = requests_sent(exporter)
    return {
        "targets": args.targets, "interval_s": args.interval, "minutes": args.minutes,
        "wall_s": round(time.monotonic() - started, 1), "api_requests": int(requests - before),
        "scrapes": scrapes, "failed_scrapes": failures,
        "worst_loop_stall_ms": round(worst_stall * 1000, 1),
        "start": {k: round(v, 1) for k, v in start.items()},
        "end": {k: round(v, 1) for k, v in end.items()},
        "every_minute": [{k: round(v, 1) for k, v in s.items()} for s in trend],
        "pool_size": POOL,
    }  # fmt: skip


def main() -> int:
    """Run the soak and print its report."""
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=20.0, help="seconds before the first sample")
    p.add_argument("--latency", type=float, default=0.005, help="simulated API latency, seconds")
    report = asyncio.run(soak(p.parse_args()))
    print(json.dumps(report, indent=2))
    start, end = report["start"], report["end"]
    if not isinstance(start, dict) or not isinstance(end, dict):
        raise TypeError("report without samples")
    grew = (
        end["rss_mb"] > start["rss_mb"] * 1.10 + 5
        or end["open_fds"] > start["open_fds"] + POOL
        or end["tasks"] > start["tasks"] + 5
    )
    return 1 if grew or report["failed_scrapes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
