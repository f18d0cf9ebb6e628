"""--web.config.file: real TLS, mutual TLS and basic auth on loopback."""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
import yaml

from exporter.config.errors import ConfigError
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from exporter.web.webconfig import load_web_config
from tests.helpers import settings

PASSWORD = "scrape-password-123"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("prometheus.test")
    other_ca = trustme.CA()
    stranger = other_ca.issue_cert("stranger.test")
    files = {
        "ca": d / "ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
        "client": d / "client.pem",
        "stranger": d / "stranger.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(files["client"]))
    stranger.private_key_and_cert_chain_pem.write_to_path(str(files["stranger"]))
    return files


def web_config(tmp_path: Path, data: dict[str, object]) -> str:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


Serve = Callable[[dict[str, object]], Awaitable[str]]


@pytest.fixture
async def serve(simulator: SimulatorServer, tmp_path: Path) -> AsyncIterator[Serve]:
    """Start an exporter with a given web config; returns its HOST:PORT. Stopped afterwards."""
    started: list[Exporter] = []

    async def start(data: dict[str, object]) -> str:
        e = Exporter(
            settings(simulator.url, [], ["srv-1"]),
            web_config=load_web_config(web_config(tmp_path, data)),
        )
        await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
        started.append(e)
        return f"127.0.0.1:{e.addresses[0][1]}"

    yield start
    for e in started:
        await e.stop()


@pytest.fixture(scope="module")
def tls(pki: dict[str, Path]) -> dict[str, str]:
    """A tls_server_config section with the server's certificate."""
    return {"cert_file": str(pki["cert"]), "key_file": str(pki["key"])}


def client_context(
    ca: trustme.CA, cert: Path | None = None, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if cert is not None:
        ctx.load_cert_chain(str(cert))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


async def fetch(
    url: str, ctx: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None
) -> int:
    headers = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else {}
    async with (
        aiohttp.ClientSession() as s,
        s.get(url, ssl=ctx if ctx else False, headers=headers) as r,
    ):
        await r.read()
        return r.status


async def test_tls(serve: Serve, tls: dict[str, str], ca: trustme.CA) -> None:
    addr = await serve({"tls_server_config": tls})
    assert await fetch(f"https://{addr}/metrics", client_context(ca)) == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"http://{addr}/metrics")


async def test_tls_min_version(serve: Serve, tls: dict[str, str], ca: trustme.CA) -> None:
    addr = await serve({"tls_server_config": {**tls, "min_version": "TLS13"}})
    assert await fetch(f"https://{addr}/-/healthy", client_context(ca)) == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(
            f"https://{addr}/-/healthy", client_context(ca, max_version=ssl.TLSVersion.TLSv1_2)
        )


async def test_mutual_tls(
    serve: Serve, tls: dict[str, str], ca: trustme.CA, pki: dict[str, Path]
) -> None:
    addr = await serve({"tls_server_config": {**tls, "client_ca_file": str(pki["ca"])}})
    assert await fetch(f"https://{addr}/metrics", client_context(ca, pki["client"])) == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"https://{addr}/metrics", client_context(ca))
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"https://{addr}/metrics", client_context(ca, pki["stranger"]))


async def test_basic_auth_protects_all_but_probes(serve: Serve) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    addr = await serve({"basic_auth_users": {"prometheus": hashed}})
    base = f"http://{addr}"
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert await fetch(base + "/", auth=("prometheus", "wrong")) == 401
    assert await fetch(base + "/metrics", auth=("nobody", PASSWORD)) == 401
    assert await fetch(base + "/metrics", auth=("prometheus", PASSWORD)) == 200
    assert await fetch(base + "/metrics", auth=("prometheus", PASSWORD)) == 200  # cached
    assert await fetch(base + "/-/healthy") == 200
    assert await fetch(base + "/-/ready") == 503  # reachable, and honest: no cycle yet
    async with aiohttp.ClientSession() as s, s.post(base + "/-/reload") as r:
        assert r.status == 401


async def test_tls_and_basic_auth_together_with_headers(
    serve: Serve, tls: dict[str, str], ca: trustme.CA
) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    addr = await serve({
        "tls_server_config": tls,
        "basic_auth_users": {"prometheus": hashed},
        "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
    })  # fmt: skip
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"https://{addr}/metrics",
            ssl=client_context(ca),
            headers={"Authorization": aiohttp.encode_basic_auth("prometheus", PASSWORD)},
        ) as r,
    ):
        assert r.status == 200
        assert r.headers["X-Frame-Options"] == "deny"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"basic_auth_users": {"u": "plaintext"}}, "basic_auth_users.u: not a bcrypt hash"),
        (
            {
                "tls_server_config": {
                    "cert_file": "/nonexistent.pem",
                    "key_file": "/nonexistent.key",
                }
            },
            "cannot load",
        ),
        ({"tls_server_config": {"cert_file": "a"}}, "tls_server_config.key_file"),
        ({"tls_config": {}}, "tls_config"),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "SSL3"}},
            "min_version",
        ),
    ],
)
def test_bad_web_config_names_the_field(
    tmp_path: Path, data: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(web_config(tmp_path, data))
    assert words in str(info.value)
    assert "plaintext" not in str(info.value)


@pytest.mark.slow
def test_cli_refuses_bad_web_config(tmp_path: Path) -> None:
    path = web_config(tmp_path, {"basic_auth_users": {"u": "plaintext"}})
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--demo", "--web.config.file", path],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "basic_auth_users.u" in result.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic dTpwOnE=", ("u", "p:q")),  # the password may contain ':'
        ("basic dTpw", ("u", "p")),
        ("Bearer dTpw", None),
        ("Basic !!!", None),
        ("Basic dXNlcg==", None),  # no ':'
        (None, None),
    ],
)
def test_parse_basic_auth(header: str | None, expected: tuple[str, str] | None) -> None:
    from exporter.web.webconfig import parse_basic_auth

    assert parse_basic_auth(header) == expected


async def test_password_longer_than_bcrypt_takes_is_a_401(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    addr = await serve({"basic_auth_users": {"prom": hashed}})
    for password in ("x" * 73, PASSWORD + "y" * 100, "é" * 40):
        assert await fetch(f"http://{addr}/metrics", auth=("prom", password)) == 401
    assert await fetch(f"http://{addr}/metrics", auth=("prom", PASSWORD)) == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unknown_user_costs_a_bcrypt_check_like_a_known_one(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.web import webconfig

    checked: list[bytes] = []
    real = webconfig._check_password

    def counting(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(webconfig, "_check_password", counting)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    addr = await serve({"basic_auth_users": {"prom": hashed}})
    assert await fetch(f"http://{addr}/metrics", auth=("nobody", PASSWORD)) == 401
    assert await fetch(f"http://{addr}/metrics", auth=("prom", "wrong")) == 401
    assert len(checked) == 2
    dummy, real_hash = checked
    assert dummy != real_hash
    assert dummy.startswith(b"$2b$05$"), "the dummy hash must cost what the real ones cost"
