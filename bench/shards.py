"""``python -m bench.shards``: 1,000,000 objects over 10 shards on one machine.

One simulated cloud serves 1,000 projects of 1,000 objects, found through one account.
Each shard is its own exporter process, as in production (one per StatefulSet pod), run
one after another so that each has the machine to itself; each reports its calls, CPU per
object and peak RSS (``bench.node``), and the summary says how evenly the shards split the
work. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import simulator_process

ROOT = Path(__file__).resolve().parent.parent


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every shard's figures, and how evenly they split the objects and the calls."""
    fleet = ("--projects", str(args.projects), "--servers", str(args.servers),
             "--images", str(args.images))  # fmt: skip
    shards: list[dict[str, Any]] = []
    uvloop = importlib.util.find_spec("uvloop") is not None  # as bench.node's default
    async with simulator_process(0, args.latency, uvloop=uvloop, fleet=fleet) as url:
        for shard in range(args.total_shards):
            cmd = [
                sys.executable, "-m", "bench.node", *fleet, "--account", "--cloud", url,
                "--shard", str(shard), "--total-shards", str(args.total_shards),
                "--latency", str(args.latency), "--scrape-seconds", str(args.scrape_seconds),
            ]  # fmt: skip
            done = await asyncio.to_thread(
                subprocess.run, cmd, capture_output=True, text=True, check=True, cwd=ROOT,
                timeout=1800,
            )  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            shards.append({key: result[key] for key in (
                "shard", "targets", "api_calls", "floor_calls", "first_snapshot_s", "cycle_s",
                "ideal_cycle_s", "cpu_us_per_object", "worst_loop_stall_ms", "peak_rss_mb",
            )})  # fmt: skip
            print(json.dumps(shards[-1]), file=sys.stderr, flush=True)
    objects = [s["targets"] for s in shards]
    calls = [s["api_calls"] for s in shards]
    return {
        "objects": sum(objects),
        "total_shards": args.total_shards,
        "api_calls": sum(calls),
        "floor_calls": sum(s["floor_calls"] for s in shards),
        "objects_max_over_mean": round(max(objects) / statistics.mean(objects), 3),
        "calls_max_over_mean": round(max(calls) / statistics.mean(calls), 3),
        "cpu_us_per_object_max": max(s["cpu_us_per_object"] for s in shards),
        "peak_rss_mb_max": max(s["peak_rss_mb"] for s in shards),
        "shards": shards,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__)
    p.add_argument("--projects", type=int, default=1000)
    p.add_argument("--servers", type=int, default=900)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--total-shards", type=int, default=10)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--scrape-seconds", type=float, default=2.0)
    print(json.dumps(asyncio.run(measure(p.parse_args()))))


if __name__ == "__main__":
    main()
