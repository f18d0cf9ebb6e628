"""poll.transitional_interval: objects in CREATING, BUILDING or DELETING are asked about
between cycles, so that a finished build shows within seconds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from exporter.cloud.transport import RetryPolicy
from exporter.config.errors import ConfigError
from exporter.config.load import load_config
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Resource, Sweep, SweepKey
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import SimulatorServer
from tests.helpers import AK, PROJECT, SK, image_server_body, settings, value

STATUS = "huaweicloud_workspace_image_server_status"


def status_of(e: Exporter, sid: str, status: str) -> float | None:
    out = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
    return value(out, STATUS, project_id=PROJECT, id=sid, status=status)


async def wait_for_status(e: Exporter, sid: str, status: str, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if status_of(e, sid, status) == 1.0:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sid} did not show {status} within {within}s")


@pytest.mark.slow  # the real scheduler, in real seconds
@pytest.mark.parametrize("discovered", [False, True], ids=["by-id", "discovered"])
async def test_a_finished_build_shows_within_the_transitional_interval(
    simulator: SimulatorServer, discovered: bool
) -> None:
    cloud = simulator.cloud
    cloud.put(
        Resource.IMAGE_SERVER, PROJECT, "srv-build", image_server_body("srv-build", "BUILDING")
    )
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-idle", image_server_body("srv-idle", "ACTIVE"))
    base = settings(simulator.url, servers=() if discovered else ("srv-build", "srv-idle"))
    if discovered:
        sweep = Sweep(
            SweepKey(Resource.IMAGE_SERVER, PROJECT), simulator.url, AkSkCredentials(AK, SK)
        )
        base = replace(base, sweeps=(sweep,))
    poll = replace(base.poll, interval=300.0, transitional_interval=1.0)
    e = Exporter(replace(base, poll=poll), retry_policy=RetryPolicy(retries=0))
    await e.start(schedule=True)
    try:
        await wait_for_status(e, "srv-build", "BUILDING", within=10)
        cloud.paths.clear()
        cloud.set_status(Resource.IMAGE_SERVER, PROJECT, "srv-build", "BUILT")
        took = await wait_for_status(e, "srv-build", "BUILT", within=1.0 + 2.0)
        # Only the transitional object was asked about; the next cycle is minutes away.
        assert set(cloud.paths) == {f"/v1/{PROJECT}/image-servers/srv-build"}, cloud.paths
        assert took < 3.0
        # Once BUILT, it is no longer asked about between cycles.
        cloud.paths.clear()
        await asyncio.sleep(2.5)
        assert not cloud.paths
    finally:
        await e.stop()


def test_transitional_interval_must_be_shorter_than_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "credentials": {"access_key": AK, "secret_key": SK},
                "poll": {"interval": "60s", "transitional_interval": "2m"},
                "targets": [
                    {"project_id": PROJECT, "region": "cn-north-4", "image_servers": ["s"]}
                ],
            }
        )
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "poll.transitional_interval: 120s is not shorter than poll.interval (60s)" in str(
        err.value.problems
    )
