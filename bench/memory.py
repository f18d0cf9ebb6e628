"""Where the memory goes, per object, by structure: ``python -m bench.memory``.

Runs the exporter on the fleet of the 100,000-object goals (``bench.goals``; smaller with
``--projects``), two cycles and a gzip scrape, then walks each long-lived structure's
objects (``gc.get_referents``, ``sys.getsizeof``) and prints the bytes each holds per
polled object, as a JSON line. An object reached from two structures counts once, for the
first in this order: the snapshot (targets, objects, their strings), the rendering (the
body's pieces), the blocks kept for the next rendering, the gzip streams, the page memos,
and the rest of the poller. ``rss_mb`` is the process's resident size at that moment and
``peak_rss_mb`` its peak; what they hold beyond the structures is the interpreter, the
libraries, and memory freed but not given back.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import resource
import sys
import types
from typing import Any

import aiohttp
import psutil

from bench.common import simulator_process
from bench.node import Workload, _exporter
from bench.scrape import PROMETHEUS_HEADERS
from exporter.runtime import ListenAddress

# Shared by everything and owned by none: not walked into.
_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def deep_size(root: object, seen: set[int]) -> int:
    """The bytes of ``root`` and everything it reaches that is not in ``seen`` (which it
    joins)."""
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def structures(exporter: Any) -> dict[str, object]:
    """The long-lived structures, in the order they are counted."""
    store = exporter.exposition
    return {
        "snapshot": store.snapshot,
        "rendering": store._current,
        "blocks": store._kept,
        "gzip": store._compressed,
        "page_memos": (exporter.client._pages, exporter.client._server_pages),
        "poller": exporter.poller,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Two cycles and a scrape, then the bytes per object of each structure."""
    work = Workload.of(args)
    async with simulator_process(0, 0.05, uvloop=args.uvloop, fleet=work.fleet) as url:
        exporter = _exporter(url, work, args)
        await exporter.start(ListenAddress("127.0.0.1", 0), schedule=False)
        await exporter.run_cycle()
        metrics = f"http://127.0.0.1:{exporter.addresses[0][1]}/metrics"
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(metrics, headers=PROMETHEUS_HEADERS) as resp,
        ):
            await resp.read()
        await exporter.run_cycle()
        seen: set[int] = {id(exporter)}
        per_object = {
            name: round(deep_size(root, seen) / work.objects, 1)
            for name, root in structures(exporter).items()
        }
        rss = psutil.Process().memory_info().rss
        await exporter.stop()
    return {
        "objects": work.objects,
        "bytes_per_object": per_object,
        "structures_mb": round(sum(per_object.values()) * work.objects / 2**20, 1),
        "rss_mb": round(rss / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def markdown(r: dict[str, Any]) -> str:
    """The measure as a table for docs/benchmarks.md."""
    per_object = r["bytes_per_object"]
    rows = ["| structure | bytes per object | MB |", "|---|---|---|"]
    rows += [
        f"| {name} | {size:,.1f} | {size * r['objects'] / 2**20:.1f} |"
        for name, size in per_object.items()
    ]
    rows.append(f"| all of them | {sum(per_object.values()):,.1f} | {r['structures_mb']} |")
    return "\n".join(rows) + (
        f"\n\nThe process's resident size then: {r['rss_mb']} MB (peak {r['peak_rss_mb']} MB)."
    )


def main() -> None:
    """Measure and print one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--projects", type=int, default=100)
    p.add_argument("--servers", type=int, default=990)
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--metric-denylist", default="")
    args = p.parse_args()
    args.account, args.targets, args.devservers = True, 0, 0
    args.concurrency, args.shard, args.total_shards = 64, 0, 1
    args.uvloop = importlib.util.find_spec("uvloop") is not None
    print(json.dumps(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
