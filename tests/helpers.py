"""Shared test helpers: settings builders, tool lookup, small HTTP utilities."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.settings import PollSettings, Settings
from exporter.domain.credentials import AkSkCredentials, Credentials
from exporter.domain.targets import Resource, Target, TargetKey

if TYPE_CHECKING:
    from exporter.runtime import Exporter

PROJECT = "0123456789abcdef0123456789abcdef"
AK = "TESTACCESSKEY0000001"
SK = "test-secret-key-9f8e7d6c5b4a39281706"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(*names: str, package: str = "prometheus") -> str:
    """Path of a tool the test needs (the first of ``names`` found, on PATH or beside this
    Python, where the test extra's wheels install theirs): fails in CI when missing, skips
    elsewhere."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for name in names:
        path = shutil.which(name, path=search)
        if path is not None:
            return path
    message = f"{names[0]} is not installed (Debian package {package!r}; .ci/run installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def image_id(n: int) -> str:
    """A valid dev-server image UUID, distinct for each n."""
    return str(uuid.UUID(int=n, version=4))


def server_id(n: int) -> str:
    """A valid image-server ID, distinct for each n."""
    return f"srv-{n:06d}"


def targets(
    endpoint: str,
    images: Iterable[str] = (),
    servers: Iterable[str] = (),
    credentials: Credentials | None = None,
    project: str = PROJECT,
) -> tuple[Target, ...]:
    """Targets of one project served at ``endpoint``."""
    creds = credentials or AkSkCredentials(AK, SK)
    keys = [TargetKey(Resource.DEVSERVER_IMAGE, project, i) for i in images]
    keys += [TargetKey(Resource.IMAGE_SERVER, project, s) for s in servers]
    return tuple(Target(k, endpoint, creds) for k in keys)


def settings(
    endpoint: str,
    images: Iterable[str] = (),
    servers: Iterable[str] = (),
    *,
    credentials: Credentials | None = None,
    interval: float = 30.0,
    timeout: float = 2.0,
    concurrency: int = 8,
    retries: int = 2,
) -> Settings:
    """Settings polling the given objects at ``endpoint``."""
    return Settings(
        poll=PollSettings(
            interval=interval, timeout=timeout, concurrency=concurrency, retries=retries
        ),
        targets=targets(endpoint, images, servers, credentials),
    )


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse a text exposition into {(sample name, labels): value}."""
    out = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when it is absent."""
    return samples(exposition).get((name, frozenset(labels.items())))


def devserver_body(image: str, status: str | None = "ACTIVE", **extra: object) -> dict[str, object]:
    """A dev-server image detail answer."""
    return {"image_id": image, "name": f"img-{image[:8]}", "arch": "X86_64", "server_type": "ECS",
            "status": status, **extra}  # fmt: skip


def image_server_body(sid: str, status: object = "ACTIVE", **extra: object) -> dict[str, object]:
    """An image-server detail answer, shaped like the seed's example."""
    body: dict[str, object] = {
        "id": sid,
        "name": f"server {sid}",
        "description": "test",
        "image_ref": {"id": "1", "image_type": "private", "spce_code": "x", "product_id": "y"},
        "server_group_id": "sg-1",
        "app_group_id": "ag-1",
        "server_id": "aps-1",
        "instance_id": "ecs-1",
        "image_id": "img-1",
        "status": status,
        "authorize_accounts": [
            {"account": "a", "account_type": "USER_GROUP", "domain": "d"},
            {"account": "b", "account_type": "USER", "domain": "d"},
            {"account": "c", "account_type": "USER", "domain": "d"},
        ],
        "create_time": "2022-03-07T10:40:43.858Z",
        "update_time": "2022-03-07T10:41:43Z",
        "enterprise_project_id": "0",
    }
    body.update(extra)
    return body


LISTEN_RE = re.compile(rb"msg=listening address=([0-9.]+:\d+)")


async def start_exporter(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Run the exporter CLI on a free loopback port; return it and its base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", *args, "--web.listen-address", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
        assert line, "exporter exited before listening"
        m = LISTEN_RE.search(line)
        if m:
            return proc, "http://" + m.group(1).decode()


async def stop_exporter(proc: asyncio.subprocess.Process) -> tuple[int, bytes]:
    """SIGTERM the exporter; return its exit code and the rest of its stderr."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    return proc.returncode or 0, err


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yield its base URL (no trailing slash)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A loopback port that was free a moment ago (for programs that cannot report theirs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the exporter CLI to completion without blocking the loop (which may be serving the
    simulator the CLI talks to); return exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


class RawHttpServer:
    """A loopback server that answers every request with the same bytes, as given, then
    closes: for answers no well-behaved HTTP library would send."""

    def __init__(self) -> None:
        self.response = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> RawHttpServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def answer(self, status: str, headers: dict[str, bytes], body: bytes) -> None:
        """Answer ``HTTP/1.1 <status>`` with these header bytes and this body from now on."""
        head = b"".join(k.encode() + b": " + v + b"\r\n" for k, v in headers.items())
        self.response = (
            f"HTTP/1.1 {status}\r\n".encode()
            + head
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.response)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def status_page(e: Exporter) -> str:
    """The status page of an exporter started on a loopback port (``Exporter.start``)."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{e.addresses[0][1]}/") as r,
    ):
        return await r.text()
