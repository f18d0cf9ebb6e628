"""``python -m exporter.simulator``: serve a simulated fleet on loopback for benchmarks and soaks.

Prints one JSON line with the URL once listening, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from exporter.simulator.cloud import SimulatedCloud
from exporter.simulator.fleet import populate, populate_projects
from exporter.simulator.server import SimulatorServer


async def _serve(args: argparse.Namespace) -> None:
    cloud = SimulatedCloud(latency=args.latency, seed=args.seed)
    if args.projects:
        populate_projects(cloud, args.projects, args.servers, args.images, args.devservers)
    else:
        populate(cloud, args.objects, faults=args.faults, seed=args.seed)
    server = SimulatorServer(cloud, args.host, args.port)
    url = await server.start()
    print(json.dumps({"url": url, "objects": args.objects}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    stats = {"requests": sum(cloud.requests.values()), "peak_in_flight": cloud.peak_in_flight}
    print(json.dumps(stats), file=sys.stderr)


def main() -> None:
    """Parse flags and serve."""
    p = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument(
        "--objects", type=int, default=100, help="fleet size (half images, half servers)"
    )
    p.add_argument(
        "--projects", type=int, default=0, help="a discovery fleet of this many projects instead"
    )
    p.add_argument("--servers", type=int, default=0, help="image servers per project")
    p.add_argument("--images", type=int, default=0, help="dev-server images per project")
    p.add_argument(
        "--devservers", type=int, default=0, help="dev servers per project, running its images"
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--faults", action="store_true", help="give every object a random fault mode")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--uvloop", action="store_true", help="serve on uvloop (if installed)")
    args = p.parse_args()
    if args.uvloop:
        try:
            import uvloop  # noqa: PLC0415 - optional, for load generation only
        except ImportError:
            print("--uvloop: uvloop is not installed; serving on asyncio", file=sys.stderr)
        else:
            uvloop.run(_serve(args))
            return
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
