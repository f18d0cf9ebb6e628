"""One benchmark point, printing one JSON line:
``python -m bench.node --targets N`` (N objects polled by ID) or
``python -m bench.node --projects P --servers S --images I`` (P projects discovered, each
with S image servers and I dev-server images).

Runs in its own process so that peak RSS belongs to this point alone. The exporter runs
here, the simulator, the scrapers and the floor server each in their own process.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from bench.common import LoopLag, simulator_process
from bench.scrape import PROMETHEUS_HEADERS
from exporter.cloud.client import LIST_LIMIT
from exporter.cloud.paging import pages_needed
from exporter.cloud.transport import RetryPolicy
from exporter.config.settings import PollSettings, Settings
from exporter.domain.accounts import Account
from exporter.domain.sharding import Shard
from exporter.domain.targets import Resource, Sweep, Target
from exporter.exposition.textformat import Format
from exporter.polling.jobs import JOB_CALLS
from exporter.polling.usage import calls_needed
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator.fleet import fleet_account, fleet_sweeps, fleet_targets


async def _child(module: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _scrape(url: str, concurrency: int, seconds: float, rate: float = 0.0) -> dict[str, Any]:
    proc = await _child(
        "bench.scrape", url, "--concurrency", str(concurrency), "--seconds", str(seconds),
        "--rate", str(rate),
    )  # fmt: skip
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


@dataclass(frozen=True)
class Workload:
    """What is polled: ``objects`` watched with at least ``calls`` API calls a cycle."""

    objects: int
    calls: int
    fleet: tuple[str, ...]  # the simulator's fleet flags
    targets: Callable[[str], tuple[Target, ...]]
    sweeps: Callable[[str], tuple[Sweep, ...]]
    accounts: Callable[[str], tuple[Account, ...]] = lambda _: ()
    # The floor of calls of one sweep of each kind (for a shard, which owns sweeps).
    per_sweep: Mapping[Resource, int] = field(default_factory=dict)

    @classmethod
    def of(cls, args: argparse.Namespace) -> Workload:
        """By ID (``--targets``) or by discovery (``--projects``)."""
        if args.projects:
            # Pages, the image list, and the build jobs of a project with image servers.
            pages = pages_needed(args.servers, LIST_LIMIT) if args.servers else 0
            # With dev-server images discovered, the project's dev servers are listed too.
            usage = calls_needed(args.devservers)
            per_project = pages + 1 + (JOB_CALLS if args.servers else 0) + usage
            fleet = ("--projects", str(args.projects), "--servers", str(args.servers),
                     "--images", str(args.images),
                     "--devservers", str(args.devservers))  # fmt: skip
            objects, calls = (
                args.projects * (args.servers + args.images),
                args.projects * per_project,
            )
            per_sweep = {
                Resource.IMAGE_SERVER: per_project - 1 - usage,
                Resource.DEVSERVER_IMAGE: 1 + usage,  # its shard lists the dev servers too
            }
            if args.account:  # the same projects, found through IAM instead of configured
                return cls(objects, calls, fleet, lambda _: (), lambda _: (),
                           lambda url: (fleet_account(url),), per_sweep)  # fmt: skip
            sweeps = partial(fleet_sweeps, projects=args.projects)
            return cls(objects, calls, fleet, lambda _: (), sweeps, per_sweep=per_sweep)
        n = args.targets
        calls = n + (JOB_CALLS if n > 1 else 0)  # one project; its image servers' jobs
        return cls(n, calls, ("--objects", str(n)), lambda url: fleet_targets(url, n), lambda _: ())


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Cycle time and CPU, scrape latency against the floor, loop stall, peak RSS."""
    work = Workload.of(args)
    if args.cloud:  # a simulator already running (the sharded point shares one)
        return await _measure_at(args.cloud, work, args)
    # The simulated cloud runs on uvloop when available, so that it is not what limits the
    # cycle (the real cloud has more than one core to spare); the exporter stays on asyncio.
    async with simulator_process(0, args.latency, uvloop=args.uvloop, fleet=work.fleet) as url:
        return await _measure_at(url, work, args)


def _exporter(url: str, work: Workload, args: argparse.Namespace) -> Exporter:
    settings = Settings(
        poll=PollSettings(interval=3600, timeout=30, concurrency=args.concurrency, retries=0),
        targets=work.targets(url),
        sweeps=work.sweeps(url),
        accounts=work.accounts(url),
    )
    options: dict[str, Any] = {}
    if args.metric_denylist:  # (this option is newer than some code this bench measures)
        from exporter.exposition.selection import Selection

        options["select"] = Selection.parse(args.metric_denylist, allow=False)
    shard = Shard(args.shard, args.total_shards)
    return Exporter(settings, retry_policy=RetryPolicy(retries=0), shard=shard, **options)


async def _measure_at(url: str, work: Workload, args: argparse.Namespace) -> dict[str, Any]:
    latency, concurrency = args.latency, args.concurrency
    exporter = _exporter(url, work, args)
    await exporter.start(ListenAddress("127.0.0.1", 0), schedule=False)
    metrics_url = f"http://127.0.0.1:{exporter.addresses[0][1]}/metrics"
    publishing = _timed(exporter.exposition)
    first = time.perf_counter()
    await exporter.run_cycle()  # the first complete snapshot; then warm: connections, caches
    first = time.perf_counter() - first
    published = publishing[0] if publishing else None
    # Prometheus has scraped once, so the measured cycle compresses the format it asks
    # for. (Not decompressed: this process's peak RSS is the exporter's alone.)
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(metrics_url, headers=PROMETHEUS_HEADERS) as resp,
    ):
        await resp.read()

    cpu, wall = time.process_time(), time.perf_counter()
    snapshot = await exporter.run_cycle()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    down = sum(1 for t in snapshot.targets if not t.up)

    # Scrapes between cycles: what serving the pre-rendered bytes costs.
    idle_scrapes = await _scrape(metrics_url, args.scrapers, args.scrape_seconds)

    # Scrapes while cycles keep running; the loop's worst stall is watched throughout.
    lag = LoopLag()
    lag.start()
    scraping = asyncio.create_task(
        _scrape(metrics_url, args.scrapers, args.scrape_seconds, args.busy_rate)
    )
    # A liveness probe from outside, as a kubelet sends it, 20 times a second throughout.
    healthy_url = metrics_url.removesuffix("/metrics") + "/-/healthy"
    probing = asyncio.create_task(_scrape(healthy_url, 1, args.scrape_seconds, 20.0))
    cycles_during = 0
    while not scraping.done() or not probing.done():
        await exporter.run_cycle()
        cycles_during += 1
    busy_scrapes, probes = await scraping, await probing
    stall = await lag.stop()

    # The floor serves the very bytes a Prometheus scrape got, from memory.
    floor = await _child("bench.floor")
    if floor.stdin is None or floor.stdout is None:
        raise RuntimeError("floor server has no pipes")
    floor.stdin.write(b"".join(exporter.exposition.body(Format.OPENMETRICS, gzip=True)))
    floor.stdin.close()
    floor_url = json.loads(await floor.stdout.readline())["url"]
    floor_scrapes = await _scrape(floor_url, args.scrapers, args.scrape_seconds)
    floor.terminate()
    await floor.wait()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Sample lines: each header is a chunk of its own, starting with "#".
    body = exporter.exposition.body(Format.TEXT, gzip=False)
    samples = sum(c.count(b"\n") for c in body if not c.startswith(b"#"))
    await exporter.stop()

    calls = snapshot.api_calls or 0
    ideal = calls * latency / concurrency
    objects, floor_calls = work.objects, work.calls
    if args.total_shards > 1:  # this shard's share of the work
        objects = len(snapshot.targets)
        floor_calls = sum(work.per_sweep[s.key.resource] for s in snapshot.sweeps)
    return {
        "targets": objects,
        "shard": args.shard,
        "total_shards": args.total_shards,
        "projects": args.projects,
        "api_calls": calls,
        "floor_calls": floor_calls,
        "latency_s": latency,
        "concurrency": concurrency,
        "account": bool(args.account),
        "devservers": args.projects * args.devservers,
        "devserver_calls": sum(u.pages for u in snapshot.usage),
        "first_snapshot_s": round(first, 3),
        "first_publish_s": None if published is None else round(published, 3),
        "series_per_object": round(samples / objects, 2),
        "cycle_s": round(wall, 3),
        "ideal_cycle_s": round(ideal, 3),
        "cycle_ratio": round(wall / ideal, 3),
        "cpu_ms_per_cycle": round(cpu * 1000, 1),
        "cpu_us_per_request": round(cpu / calls * 1e6, 1),
        "cpu_us_per_object": round(cpu / objects * 1e6, 1),
        "targets_down": down,
        "scrape": idle_scrapes,
        "floor": floor_scrapes,
        "p50_ratio": round(idle_scrapes["p50"] / floor_scrapes["p50"], 2),
        "p99_ratio": round(idle_scrapes["p99"] / floor_scrapes["p99"], 2),
        "scrape_during_cycles": busy_scrapes,
        "cycles_during_scrapes": cycles_during,
        "healthy_during_cycles": probes,
        "worst_loop_stall_ms": round(stall * 1000, 1),
        "peak_rss_mb": round(peak, 1),
    }


def _timed(store: Any) -> list[float]:
    """The time each ``store.update`` takes (merging a round, rendering, compressing: the
    first one is the time from the first cycle's last answer to its snapshot served)."""
    times: list[float] = []
    update = store.update

    async def timed(change: Any) -> Any:
        start = time.perf_counter()
        try:
            return await update(change)
        finally:
            times.append(time.perf_counter() - start)

    store.update = timed
    return times


def main() -> None:
    """Measure one N and print it as JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.node", description=__doc__)
    p.add_argument("--targets", type=int, default=0, help="objects polled by ID")
    p.add_argument("--projects", type=int, default=0, help="projects discovered instead")
    p.add_argument("--servers", type=int, default=0, help="image servers per project")
    p.add_argument("--images", type=int, default=0, help="dev-server images per project")
    p.add_argument("--devservers", type=int, default=0, help="dev servers per project")
    p.add_argument(
        "--account", action="store_true", help="find the projects through one account (IAM)"
    )
    p.add_argument("--cloud", help="URL of a simulator already serving the fleet")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--total-shards", type=int, default=1)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--scrapers", type=int, default=8)
    p.add_argument("--scrape-seconds", type=float, default=10.0)
    p.add_argument("--busy-rate", type=float, default=2.0, help="per scraper, during cycles")
    p.add_argument("--metric-denylist", default="", help="as the exporter's flag")
    p.add_argument(
        "--no-uvloop",
        dest="uvloop",
        action="store_false",
        default=importlib.util.find_spec("uvloop") is not None,
        help="run the simulator on asyncio (the default when uvloop is not installed)",
    )
    print(json.dumps(asyncio.run(measure(p.parse_args()))))


if __name__ == "__main__":
    main()
