"""A forward proxy on loopback, as an enterprise network's: CONNECT tunnels for https,
absolute-URI forwarding for http, and Basic proxy authentication when asked. Host names it
is asked for map to loopback ports (the client never resolves them: the proxy does)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field

from yarl import URL


@dataclass
class ForwardProxy:
    """Serves on 127.0.0.1; ``url`` is set once started."""

    hosts: dict[str, int]  # a name the proxy is asked for -> a loopback port
    credentials: tuple[str, str] | None = None  # (user, password) required, or None
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, target)
    refused: int = 0
    url: str = ""
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        line, *headers = head.decode("latin-1").split("\r\n")
        method, target, version = line.split(" ", 2)
        fields = {
            h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in headers if ":" in h
        }
        if self.credentials is not None:
            expected = base64.b64encode(":".join(self.credentials).encode()).decode()
            if fields.get("proxy-authorization") != f"Basic {expected}":
                self.refused += 1
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                )
                await writer.drain()
                writer.close()
                return
        self.seen.append((method, target))
        if method == "CONNECT":
            host = target.rsplit(":", 1)[0]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.hosts[host])
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = URL(target)
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.hosts[url.host or ""]
            )
            kept = [h for h in headers if h and not h.lower().startswith(("proxy-", "connection"))]
            request = [f"{method} {url.raw_path_qs} {version}", *kept, "Connection: close", "", ""]
            up_writer.write("\r\n".join(request).encode("latin-1"))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()
