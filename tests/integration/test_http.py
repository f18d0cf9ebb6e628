"""The exporter's HTTP endpoints on a real loopback server."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from exporter.cloud.transport import RetryPolicy
from exporter.domain.state import Snapshot
from exporter.domain.targets import Resource
from exporter.exposition.store import Exposition
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from tests.helpers import (
    PROJECT,
    devserver_body,
    image_id,
    image_server_body,
    require_tool,
    settings,
)

IMG = image_id(7)
SRV = "srv-html"
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
async def served(simulator: SimulatorServer) -> AsyncIterator[tuple[Exporter, str]]:
    simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, IMG, devserver_body(IMG))
    simulator.cloud.put(
        Resource.IMAGE_SERVER,
        PROJECT,
        SRV,
        image_server_body(SRV, name='<script>alert("x")</script>'),
    )
    e = Exporter(settings(simulator.url, [IMG], [SRV]), retry_policy=RetryPolicy(retries=0))
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    host, port = e.addresses[0]
    yield e, f"http://{host}:{port}"
    await e.stop()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept-Encoding": "identity", **headers}
    async with aiohttp.ClientSession(auto_decompress=False) as s, s.get(url, headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def test_healthy_and_ready(served: tuple[Exporter, str]) -> None:
    exporter, base = served
    assert (await get(base + "/-/healthy"))[0] == 200
    status, _, body = await get(base + "/-/ready")
    assert status == 503 and b"first poll cycle" in body
    await exporter.run_cycle()
    assert (await get(base + "/-/ready"))[0] == 200


async def test_metrics_text_by_default(served: tuple[Exporter, str]) -> None:
    exporter, base = served
    await exporter.run_cycle()
    status, headers, body = await get(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert "huaweicloud_modelarts_devserver_image_status{" in text
    assert "huaweicloud_image_exporter_build_info{" in text
    assert "process_cpu_seconds_total" in text
    assert "# EOF" not in text


async def test_metrics_openmetrics_for_prometheus(served: tuple[Exporter, str]) -> None:
    exporter, base = served
    await exporter.run_cycle()
    _, headers, body = await get(base + "/metrics", Accept=PROMETHEUS_ACCEPT)
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1
    assert b"huaweicloud_image_exporter_api_requests_total{" in body


@pytest.mark.parametrize("accept", ["", PROMETHEUS_ACCEPT])
async def test_gzip_is_one_valid_stream_equal_to_plain(
    served: tuple[Exporter, str], accept: str
) -> None:
    exporter, base = served
    await exporter.run_cycle()
    _, headers, packed = await get(
        base + "/metrics", **{"Accept-Encoding": "gzip", "Accept": accept}
    )
    assert headers["Content-Encoding"] == "gzip"
    _, _, plain = await get(base + "/metrics", Accept=accept)
    unpacked = gzip.decompress(packed)

    # The live part (process CPU, API counters) may move between the two scrapes; the
    # snapshot part must be identical and the structure whole.
    def stable(b: bytes) -> list[bytes]:
        return [
            ln
            for ln in b.splitlines()
            if ln.startswith((b"huaweicloud_modelarts", b"huaweicloud_workspace"))
        ]

    assert stable(unpacked) == stable(plain) and stable(plain)
    assert unpacked.endswith(b"# EOF\n") == plain.endswith(b"# EOF\n")


async def test_gzip_refused_with_q0(served: tuple[Exporter, str]) -> None:
    _, base = served
    _, headers, _ = await get(base + "/metrics", **{"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in headers


async def test_landing_page_lists_targets_escaped(served: tuple[Exporter, str]) -> None:
    exporter, base = served
    await exporter.run_cycle()
    status, headers, body = await get(base + "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert IMG in page and SRV in page and "0.1.0" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert 'href="metrics"' in page
    # Should escaping ever fail, the browser still runs only the page's own script.
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy


async def test_reload_without_config_file_is_refused(served: tuple[Exporter, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession() as s, s.post(base + "/-/reload") as r:
        assert r.status == 400
        assert "not started from a configuration file" in await r.text()


async def test_promtool_accepts_the_exposition(served: tuple[Exporter, str]) -> None:
    promtool = require_tool("promtool")
    exporter, base = served
    await exporter.run_cycle()
    _, _, body = await get(base + "/metrics")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def exchange(base: str, raw: bytes) -> bytes:
    """Send raw bytes on one connection and read until the server closes it."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return data


@pytest.mark.parametrize("path", ["/metrics", "/", "/-/healthy", "/-/ready"])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_head_sends_headers_only_on_a_keep_alive_connection(
    served: tuple[Exporter, str], path: str, encoding: str
) -> None:
    exporter, base = served
    await exporter.run_cycle()
    data = await exchange(
        base,
        f"HEAD {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {encoding}\r\n\r\n"
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert rest.startswith(b"HTTP/1.1 200 OK"), f"HEAD {path} sent a body: {rest[:80]!r}"
    assert rest.endswith(b"Healthy.\n")


async def post(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(url, headers=headers) as r:
        return r.status, await r.text()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
        {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        # DNS rebinding: evil.example now resolves to this machine, so its page is
        # "same-origin" with the exporter, Host and Origin alike.
        {"Origin": "http://evil.example:9887", "Host": "evil.example:9887"},
        {
            "Sec-Fetch-Site": "same-origin",
            "Host": "evil.example:9887",
            "Origin": "http://evil.example:9887",
        },
        # Not a host or an origin at all: refused, not a 500 with a traceback.
        {"Origin": "http://[::1"},
        {"Origin": "http://127.0.0.1:99999"},
        {"Host": "[::1", "Origin": "http://127.0.0.1"},
    ],
)
async def test_reload_refuses_cross_site_requests(
    served: tuple[Exporter, str], headers: dict[str, str]
) -> None:
    _, base = served
    status, body = await post(base + "/-/reload", **headers)
    assert status == 403 and "cross-site" in body


async def test_reload_takes_post_only_and_tools_get_through(served: tuple[Exporter, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession() as s:
        for method in ("PUT", "GET"):
            async with s.request(method, base + "/-/reload") as r:
                assert r.status == 405, method
    # curl -X POST, configmap-reload, and the page's own origin get to the reload itself
    # (which this exporter, started without a file, then refuses with 400).
    host = base.removeprefix("http://")
    local = f"http://localhost:{host.rsplit(':', 1)[1]}"
    for headers in ({}, {"Origin": base, "Sec-Fetch-Site": "same-origin"}, {"Host": host},
                    {"Origin": local, "Host": local.removeprefix("http://")}):  # fmt: skip
        status, body = await post(base + "/-/reload", **headers)
        assert status == 400 and "configuration file" in body, headers


def test_landing_page_shows_accounts_and_sweeps_escaped() -> None:
    from exporter.domain.health import Health
    from exporter.domain.state import AccountState, Snapshot, SweepState
    from exporter.domain.targets import SweepKey
    from exporter.web.landing import render_landing

    evil = '<script>alert("x")</script>'
    snap = Snapshot(
        (),
        {},
        60.0,
        sweeps=(
            SweepState(SweepKey(Resource.IMAGE_SERVER, "p1"),
                       Health(False, 10.0, f"HTTP 500: {evil}", "http_500"), 3, 1, True),
            SweepState(SweepKey(Resource.DEVSERVER_IMAGE, "p2"), Health(False, None), None, 1,
                       None, unavailable_until=99.0),
        ),
        accounts=(AccountState("prod", Health(False, 5.0, f"HTTP 503: {evil}", "http_503"), 4),),
    )  # fmt: skip
    page = render_landing(snap)
    assert evil not in page and "&lt;script&gt;" in page
    assert "<h2>Accounts (1)</h2>" in page and "<h2>Sweeps (2)</h2>" in page
    assert "not offered" in page and "HTTP 503: &lt;script&gt;" in page
    assert "<h2>Accounts" not in render_landing(Snapshot((), {}, 60.0)), "no empty tables"


def _devserver_images(n: int) -> Snapshot:
    from exporter.domain.health import Health
    from exporter.domain.state import DevServerImage, TargetState
    from exporter.domain.targets import TargetKey

    states = tuple(
        TargetState(TargetKey(Resource.DEVSERVER_IMAGE, "p", f"i{i}"), Health(True, 1.0 + i),
                    True, DevServerImage(f"n{i}", "ARM", "BMS", "ACTIVE"), 2.0)
        for i in range(n)
    )  # fmt: skip
    return Snapshot(states, {Resource.DEVSERVER_IMAGE: n}, 60.0, 1.5, 3.0)


async def test_a_body_larger_than_one_write_arrives_whole() -> None:
    from exporter.web.server import WRITE, build_app
    from tests.helpers import serving

    async def no_reload() -> None:
        raise AssertionError("not reloaded here")

    store = Exposition(CollectorRegistry(), _devserver_images(4000))
    plain = b"".join(store.body(Format.TEXT, False))
    assert len(plain) > 2 * WRITE
    async with serving(build_app(store, no_reload)) as url, aiohttp.ClientSession() as s:
        async with s.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
            assert await resp.read() == plain
        async with s.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip" and await resp.read() == plain


async def test_a_large_body_is_written_over_many_turns_of_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a fast reader takes a body as fast as it is written, the handler still lets
    the loop run between chunks: a whole body in one turn stalled everything else."""
    import urllib.request

    from aiohttp import web

    from exporter.web import server
    from tests.helpers import serving

    async def no_reload() -> None:
        raise AssertionError("not reloaded here")

    monkeypatch.setattr(server, "YIELD_EVERY", 16 << 10)
    turns, seen = 0, []
    write = web.StreamResponse.write

    async def counted(self: web.StreamResponse, data: bytes | bytearray | memoryview) -> None:
        seen.append(turns)
        await write(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counted)
    store = Exposition(CollectorRegistry(), _devserver_images(4000))
    plain = b"".join(store.body(Format.TEXT, False))

    async def ticking() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async with serving(server.build_app(store, no_reload)) as url:
        ticker = asyncio.create_task(ticking())
        # Read in a thread, not by the loop's turns (a loopback URL the test made).
        request = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "x"})  # noqa: S310
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(request).read())  # noqa: S310
        ticker.cancel()
    # A turn after each chunk of YIELD_EVERY bytes or more, at least.
    chunks = sum(1 for chunk in store.body(Format.TEXT, False) if len(chunk) >= 16 << 10)
    assert body == plain and chunks >= 8
    assert len(set(seen)) >= chunks, (len(set(seen)), chunks)
