"""Fixtures: a simulated cloud on loopback, and an exporter wired to it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

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
