"""Headless Chromium for tests, driven over the DevTools protocol with aiohttp's websocket.

Debian's ``chromium`` package is all it needs: no driver, no browser download.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import free_port, require_tool


class Page:
    """One browser tab: commands, and the events seen so far."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run a DevTools command and return its result (events on the way are kept)."""
        n = next(self._ids)
        await self._ws.send_json({"id": n, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), timeout=30)
            if message.get("id") == n:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    async def wait_event(self, method: str) -> dict[str, Any]:
        """The first event of ``method``, seen already or arriving within 30 s."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message: dict[str, Any] = await asyncio.wait_for(self._ws.receive_json(), timeout=30)
            self.events.append(message)
            if message.get("method") == method:
                return message

    async def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


@asynccontextmanager
async def chromium(profile: Path, width: int = 1400, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium on loopback with a fresh profile; yields its first tab."""
    binary = require_tool("chromium", package="chromium")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking", "--disable-sync",
        f"--window-size={width},{height}", f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            pages: list[dict[str, Any]] = []
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                        pages = [t for t in json.loads(await r.text()) if t["type"] == "page"]
                    if pages:
                        break
                except aiohttp.ClientError:
                    pass
                assert proc.returncode is None, "chromium exited"
                await asyncio.sleep(0.1)
            assert pages, "chromium did not open a tab"
            url = pages[0]["webSocketDebuggerUrl"]
            async with session.ws_connect(url, max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
