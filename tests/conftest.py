"""Fixtures: a simulated cloud on loopback, and an exporter wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exporter.simulator import SimulatedCloud, SimulatorServer
from tests.helpers import AK, SK


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
