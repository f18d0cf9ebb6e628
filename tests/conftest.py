"""Fixtures: a simulated cloud on loopback, and an exporter wired to it."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from exporter.simulator import SimulatedCloud, SimulatorServer
from tests.helpers import AK, IN_CI, SK

# Property tests: thorough in CI and in a full run, a quick sample in the inner loop
# (`-m "not slow"`). HYPOTHESIS_PROFILE picks one explicitly.
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "quick", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _loopback_only(address: Any) -> None:
    """Refuse a connection anywhere but loopback: a default that names a real endpoint
    (an STS or metadata host) must never be reached from a test."""
    if isinstance(address, tuple):
        host = str(address[0]).split("%", 1)[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests connect to loopback only, not {host}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _loopback_only(address)
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _loopback_only(address)
    return _connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Every test process connects to loopback only (a refused connection, never traffic)."""
    setattr(socket.socket, "connect", _guarded_connect)  # noqa: B010 - mypy: a C method
    setattr(socket.socket, "connect_ex", _guarded_connect_ex)  # noqa: B010
    yield
    setattr(socket.socket, "connect", _connect)  # noqa: B010
    setattr(socket.socket, "connect_ex", _connect_ex)  # noqa: B010


def pytest_configure(config: pytest.Config) -> None:
    """Choose the hypothesis profile from the environment and the marker expression."""
    quick = not IN_CI and "not slow" in (config.getoption("markexpr", "") or "")
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick" if quick else "thorough"))


@pytest.fixture
def cloud() -> SimulatedCloud:
    """A fake cloud that knows the test key pair."""
    c = SimulatedCloud()
    c.add_access_key(AK, SK)
    return c


@pytest.fixture
async def simulator(cloud: SimulatedCloud) -> AsyncIterator[SimulatorServer]:
    """The fake cloud served on 127.0.0.1."""
    async with SimulatorServer(cloud) as server:
        yield server
