"""The floor: aiohttp serving fixed bytes from memory, nothing else.

``python -m bench.floor < BODY`` reads the body from standard input, prints one JSON line
with its URL, then serves those bytes (with the Content-Type and Content-Encoding the
exporter would send) until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from aiohttp import web


async def serve(body: bytes) -> None:
    """Serve ``body`` on a loopback port until SIGTERM."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            headers={
                "Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8",
                "Content-Encoding": "gzip",
            },
        )

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}/metrics"}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Serve the bytes read from standard input."""
    argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__).parse_args()
    asyncio.run(serve(sys.stdin.buffer.read()))


if __name__ == "__main__":
    main()
