"""Serving a SimulatedCloud on a loopback port."""

from __future__ import annotations

import ssl

from aiohttp import web

from exporter.simulator.cloud import SimulatedCloud


class SimulatorServer:
    """Runs a SimulatedCloud's app; ``url`` is set once started."""

    def __init__(
        self,
        cloud: SimulatedCloud,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.cloud = cloud
        self._host = host
        self._port = port
        self._ssl = ssl_context  # serve HTTPS (a test's private CA)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen and return the base URL (``http://host:port``)."""
        self._runner = web.AppRunner(self.cloud.app(), access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        await site.start()
        sockname = self._runner.addresses[0]
        host = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
        self.url = f"{'https' if self._ssl else 'http'}://{host}:{sockname[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
