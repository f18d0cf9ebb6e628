"""Enterprise networks: every call to the cloud through a forward proxy (configured, or
from ``HTTPS_PROXY``), to endpoints whose certificates a private CA signed; the metadata
service and loopback never proxied; TLS and proxy failures one clear line, never a crash,
and a proxy's password never shown."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from yarl import URL

from exporter.cloud.network import Network
from exporter.cloud.transport import RetryPolicy
from exporter.config.load import parse_config
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import SimulatedCloud, SimulatorServer
from tests.helpers import AK, PROJECT, SK, image_server_body, status_page
from tests.proxy import ForwardProxy

NAME = "workspace.hcs.test"  # resolved by the proxy only (the client never resolves it)
SERVERS = [f"srv-{n}" for n in range(5)]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def https_cloud(cloud: SimulatedCloud, ca: trustme.CA) -> AsyncIterator[SimulatorServer]:
    """The simulated cloud over HTTPS, its certificate (for NAME and localhost) signed by a
    CA made for this test."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME, "localhost").configure_cert(context)
    for sid in SERVERS:
        cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    async with SimulatorServer(cloud, ssl_context=context) as server:
        yield server


def config(endpoint: str, http_client: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "targets": [{"project_id": PROJECT, "workspace_endpoint": endpoint,
                     "image_servers": SERVERS}],
    }  # fmt: skip
    if http_client is not None:
        data["http_client"] = http_client
    return data


async def exported(data: dict[str, Any], env: dict[str, str]) -> tuple[list[bool], str]:
    e = Exporter(parse_config(data, env), retry_policy=RetryPolicy(retries=0))
    try:
        snap = await e.run_cycle()
        text = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
    finally:
        await e.stop()
    return [t.up for t in snap.targets], text


def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "hcs-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize("how", ["http_client", "HTTPS_PROXY"])
async def test_every_object_through_a_proxy_to_a_private_ca_endpoint(
    https_cloud: SimulatorServer, ca: trustme.CA, tmp_path: Path, how: str
) -> None:
    port = URL(https_cloud.url).port
    assert port is not None
    async with ForwardProxy({NAME: port}, credentials=("corp", "proxy-pass-0123")) as proxy:
        authed = proxy.url.replace("http://", "http://corp:proxy-pass-0123@")
        tls = {"tls_config": {"ca_file": ca_file(ca, tmp_path)}}
        client = {**tls, "proxy_url": authed} if how == "http_client" else tls
        env = {"HTTPS_PROXY": authed} if how == "HTTPS_PROXY" else {}
        up, text = await exported(config(f"https://{NAME}:{port}", client), env)
    assert up == [True] * len(SERVERS)
    assert proxy.seen and all(m == "CONNECT" and t == f"{NAME}:{port}" for m, t in proxy.seen)
    assert "proxy-pass-0123" not in text


async def test_without_the_private_ca_the_error_says_to_set_ca_file(
    https_cloud: SimulatorServer,
) -> None:
    port = URL(https_cloud.url).port
    e = Exporter(parse_config(config(f"https://localhost:{port}"), {}),
                 retry_policy=RetryPolicy(retries=0))  # fmt: skip
    try:
        snap = await e.run_cycle()
    finally:
        await e.stop()
    assert {t.up for t in snap.targets} == {False}
    error = snap.targets[0].error or ""
    assert error.startswith(f"connection: TLS: cannot verify the certificate of localhost:{port} (")
    assert error.endswith(
        "if a private CA signed it, set http_client.tls_config.ca_file to that CA's certificate"
    )


async def test_a_proxy_refusing_the_credentials_is_one_clear_line(
    https_cloud: SimulatorServer, ca: trustme.CA, tmp_path: Path
) -> None:
    port = URL(https_cloud.url).port
    assert port is not None
    async with ForwardProxy({NAME: port}, credentials=("corp", "right")) as proxy:
        wrong = proxy.url.replace("http://", "http://corp:wrong-pass-4567@")
        client = {"proxy_url": wrong, "tls_config": {"ca_file": ca_file(ca, tmp_path)}}
        e = Exporter(parse_config(config(f"https://{NAME}:{port}", client), {}),
                     retry_policy=RetryPolicy(retries=0))  # fmt: skip
        try:
            snap = await e.run_cycle()
        finally:
            await e.stop()
    assert proxy.refused and {t.up for t in snap.targets} == {False}
    error = snap.targets[0].error or ""
    assert error.startswith("connection: the proxy refused the connection: HTTP 407")
    assert "wrong-pass-4567" not in error


async def test_plain_http_is_forwarded_and_loopback_is_never_proxied(
    simulator: SimulatorServer,
) -> None:
    for sid in SERVERS:
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    port = URL(simulator.url).port
    assert port is not None
    async with ForwardProxy({NAME: port}) as proxy:
        up, _ = await exported(config(f"http://{NAME}:{port}", {"proxy_url": proxy.url}), {})
        assert up == [True] * len(SERVERS)
        assert proxy.seen and all(t.startswith(f"http://{NAME}:{port}/") for _, t in proxy.seen)
        forwarded = len(proxy.seen)
        up, _ = await exported(config(simulator.url, {"proxy_url": proxy.url}), {})
        assert up == [True] * len(SERVERS) and len(proxy.seen) == forwarded  # direct


@pytest.mark.parametrize(("url", "no_proxy", "proxied"), [
    ("https://modelarts.cn-north-4.myhuaweicloud.com/v1", (), True),
    ("http://169.254.169.254/openstack/latest/securitykey", (), False),  # metadata
    ("http://127.0.0.1:9/x", (), False),
    ("http://[::1]:9/x", (), False),
    ("https://iam.corp.internal/v3", (".internal",), False),
    ("https://iam.corp.internal/v3", ("internal",), False),
    ("https://10.1.2.3/v1", ("10.0.0.0/8",), False),
    ("https://10.1.2.3/v1", ("192.168.0.0/16",), True),
    ("https://host.example:8443/v1", ("host.example:8443",), False),
    ("https://anything.example/v1", ("*",), False),
])  # fmt: skip
def test_which_requests_go_through_the_proxy(
    url: str, no_proxy: tuple[str, ...], proxied: bool
) -> None:
    network = Network.resolve({}, proxy_url="http://proxy.corp:3128", no_proxy=no_proxy)
    assert (network.proxy_for(URL(url)) is not None) is proxied


def test_the_environment_gives_proxies_per_scheme_and_the_file_wins() -> None:
    env = {"https_proxy": "http://s.corp:1", "HTTP_PROXY": "http://p.corp:2",
           "NO_PROXY": "a.corp, 10.0.0.0/8"}  # fmt: skip
    network = Network.resolve(env)
    assert network.proxy_for(URL("https://x.example/")) == "http://s.corp:1"
    assert network.proxy_for(URL("http://x.example/")) == "http://p.corp:2"
    assert network.proxy_for(URL("https://b.a.corp/")) is None
    mine = Network.resolve(env, proxy_url="http://mine:3", no_proxy=())
    assert mine.proxy_for(URL("https://b.a.corp/")) == "http://mine:3"


def test_a_ca_file_that_is_not_one_is_a_clear_config_error(tmp_path: Path) -> None:
    from exporter.config.errors import ConfigError

    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        parse_config(config("https://x.example", {"tls_config": {"ca_file": str(bad)}}), {})
    [problem] = caught.value.problems
    assert problem.startswith(f"http_client.tls_config.ca_file: {str(bad)!r} is not a readable PEM")


async def test_skipping_verification_is_warned_at_start_and_on_the_page(
    https_cloud: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:

    from exporter.runtime import ListenAddress

    port = URL(https_cloud.url).port
    data = config(f"https://localhost:{port}", {"tls_config": {"insecure_skip_verify": True}})
    e = Exporter(parse_config(data, {}), retry_policy=RetryPolicy(retries=0))
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        snap = await e.run_cycle()  # the private CA's certificate, not verified
        page = await status_page(e)
    finally:
        await e.stop()
    assert {t.up for t in snap.targets} == {True}
    assert "insecure_skip_verify is true" in caplog.text
    assert '<p class="notice">http_client.tls_config.insecure_skip_verify is true' in page
