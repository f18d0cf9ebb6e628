"""Clients that hold connections: a cap, idle and slow-header time-outs, bounded headers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from exporter.logs import EveryMinute
from exporter.runtime import Exporter, ListenAddress
from exporter.web.listener import Limits
from tests.helpers import settings


@pytest.fixture
async def limited() -> AsyncIterator[tuple[str, int]]:
    e = Exporter(
        settings("http://127.0.0.1:1", [], ["srv-1"]),
        limits=Limits(max_connections=4, keepalive=0.5),
    )
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    yield "127.0.0.1", e.addresses[0][1]
    await e.stop()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout=within) == b""
    except TimeoutError:
        return False


async def healthy(host: str, port: int) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"http://{host}:{port}/-/healthy") as r:
        return r.status


async def test_connections_past_the_cap_are_closed_and_service_resumes(
    limited: tuple[str, int],
) -> None:
    host, port = limited
    held = [await asyncio.open_connection(host, port) for _ in range(4)]
    extra_reader, extra_writer = await asyncio.open_connection(host, port)
    assert await closed_by_server(extra_reader, within=0.4), "the fifth connection was kept"
    extra_writer.close()
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    assert await healthy(host, port) == 200


async def test_every_one_of_the_allowed_connections_is_served(limited: tuple[str, int]) -> None:
    host, port = limited
    held = [await asyncio.open_connection(host, port) for _ in range(4)]  # the cap: 4
    try:
        for _, writer in held:
            writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses = [await asyncio.wait_for(reader.readline(), timeout=2) for reader, _ in held]
        assert statuses == [b"HTTP/1.1 200 OK\r\n"] * 4
    finally:
        for _, writer in held:
            writer.close()


async def test_idle_and_slow_header_connections_time_out(limited: tuple[str, int]) -> None:
    host, port = limited
    idle_reader, idle_writer = await asyncio.open_connection(host, port)
    slow_reader, slow_writer = await asyncio.open_connection(host, port)
    slow_writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    started = time.monotonic()
    assert await closed_by_server(idle_reader, within=5)
    assert await closed_by_server(slow_reader, within=5)
    assert time.monotonic() - started < 5
    idle_writer.close()
    slow_writer.close()


@pytest.mark.parametrize(
    "headers",
    [
        "".join(f"X-H{n}: v\r\n" for n in range(100)),  # too many
        "X-Big: " + "a" * 20_000 + "\r\n",  # too long
    ],
    ids=["100 headers", "a 20 kB header"],
)
async def test_oversized_headers_are_refused_before_anything_else(
    limited: tuple[str, int], headers: str
) -> None:
    host, port = limited
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] in (b"400", b"431"), answer[:60]


def test_accept_errors_are_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.accept")
    logger.addFilter(EveryMinute("socket.accept() out of system resource"))
    with caplog.at_level(logging.ERROR, logger="test.accept"):
        for _ in range(1000):
            logger.error("socket.accept() out of system resource")
        logger.error("something else")
    assert [r.getMessage() for r in caplog.records] == [
        "socket.accept() out of system resource",
        "something else",
    ]


async def test_300_refused_connections_make_one_line_and_no_traceback(
    limited: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    host, port = limited
    caplog.set_level(logging.WARNING)
    held = [await asyncio.open_connection(host, port) for _ in range(4)]
    refused = []
    for _ in range(300):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        refused.append((reader, writer))
    for reader, writer in refused:
        # Closed with the request unread: a reset, which is a refusal too.
        with contextlib.suppress(ConnectionResetError):
            await closed_by_server(reader, within=1.0)
        writer.close()
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["connection limit reached; closing new connections"], lines[:3]
    assert "Traceback" not in caplog.text  # was one per refused connection


FLOOD = r"""
import asyncio, sys
async def main(port):
    line = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    conns = []
    for _ in range(400):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + line * 31)  # never finished
        conns.append(writer)
    await asyncio.sleep(1.0)
    for writer in conns:
        writer.close()
asyncio.run(main(int(sys.argv[1])))
"""


@pytest.mark.slow  # real time: a flood from another process, then the trimmer's turn
async def test_memory_held_by_a_flood_of_unfinished_headers_is_given_back() -> None:
    import sys

    import psutil

    e = Exporter(settings("http://127.0.0.1:1", [], ["srv-1"]), limits=Limits(trim_every=0.3))
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        me = psutil.Process()
        before = me.memory_info().rss
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, str(e.addresses[0][1])
        )
        await flood.wait()
        await asyncio.sleep(1.5)
        kept = me.memory_info().rss - before
    finally:
        await e.stop()
    assert kept < 60 << 20, f"{kept >> 20} MiB kept"  # was 165 MiB more, 232 MiB in all
