"""The listening socket's limits: connections, idle and slow clients, header sizes.

Without them, a client that opens connections and never finishes its headers holds file
descriptors and buffers for an hour (aiohttp's default keep-alive): about 1,000 idle
connections exhaust systemd's default of 1,024 descriptors, and 400 unfinished 1 MB
header blocks cost 750 MB. With them, each connection is closed after ``keepalive`` seconds
without a complete request, headers are bounded before authentication, and connections
beyond ``max_connections`` are closed as soon as they are accepted, so that the process
never runs out of descriptors and /metrics stays reachable once the flood ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from exporter.support.memory import malloc_trim

log = logging.getLogger(__name__)


DEFAULT_MAX_CONNECTIONS = 512  # as Prometheus' own --web.max-connections


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what clients may hold; the defaults suit a scrape target."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keepalive: float = 15.0  # seconds a connection may sit without a complete request
    max_headers: int = 32
    max_field_size: int = 8190  # bytes of one header line
    # After a burst of at least this many connections has gone, the C heap is trimmed...
    trim_after: int = 64
    trim_every: float = 10.0  # ...checked this often (seconds)


class _Runner(web.AppRunner):
    """An AppRunner whose server closes connections past ``max_connections``."""

    def __init__(self, app: web.Application, limits: Limits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._max_connections = limits.max_connections
        self.refused = 0
        self.trims = 0
        self._peak = 0
        self._trim = malloc_trim()
        self._trimmer: asyncio.Task[None] | None = None

    def start_trimming(self) -> None:
        """Watch for bursts of connections that have gone, and give their memory back."""
        if self._trim is not None and self._trimmer is None:
            self._trimmer = asyncio.create_task(self._trim_after_bursts())

    async def _trim_after_bursts(self) -> None:
        while True:
            await asyncio.sleep(self._limits.trim_every)
            now = len(self.server.connections) if self.server is not None else 0
            if self._peak >= self._limits.trim_after and now <= self._peak // 2:
                assert self._trim is not None
                await asyncio.to_thread(self._trim)  # ctypes lets go of the GIL meanwhile
                self.trims += 1
                self._peak = now

    async def cleanup(self) -> None:
        """Stop the trimmer, then the server."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        await super().cleanup()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        accept = server.connection_made

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            accept(handler, transport)
            self._peak = max(self._peak, len(server.connections))
            if len(server.connections) > self._max_connections:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.warning(
                        "connection limit reached; closing new connections",
                        extra={"max_connections": self._max_connections, "refused": self.refused},
                    )
                # After the handler's first step has run: closed before it, aiohttp's
                # handler task fails an assertion and asyncio logs a traceback for each.
                asyncio.get_running_loop().call_soon(transport.close)

        server.connection_made = connection_made  # type: ignore[method-assign]
        return server


async def listen(
    app: web.Application,
    host: str | None,
    port: int,
    tls: ssl.SSLContext | None,
    limits: Limits,
) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` within ``limits``; the caller cleans the runner up."""
    runner = _Runner(
        app,
        limits,
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=limits.keepalive,
        max_headers=limits.max_headers,
        max_field_size=limits.max_field_size,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    runner.start_trimming()
    return runner
