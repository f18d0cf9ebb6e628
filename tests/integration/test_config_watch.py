"""The configuration reloads itself when its file's content changes, as a Kubernetes
ConfigMap volume swaps it in: a new directory, and the ``..data`` symlink moved to it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from exporter.cloud.transport import RetryPolicy
from exporter.config.load import load_config
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from tests.helpers import AK, PROJECT, SK, image_server_body, value

RELOAD_OK = "huaweicloud_image_exporter_config_last_reload_successful"


def config(endpoint: str, servers: list[str]) -> dict[str, object]:
    return {"credentials": {"access_key": AK, "secret_key": SK},
            "targets": [{"project_id": PROJECT, "workspace_endpoint": endpoint,
                         "image_servers": servers}]}  # fmt: skip


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def mount(volume: Path, version: int, content: dict[str, object]) -> None:
    """What the kubelet does on a ConfigMap change: write the new files into a directory
    of their own, then move ``..data`` to it atomically."""
    new = volume / f"..2026_12_07_{version:02d}"
    new.mkdir()
    (new / "config.yaml").write_text(yaml.safe_dump(content))
    link = volume / "..data_tmp"
    link.symlink_to(new.name)
    link.replace(volume / "..data")


async def until(condition: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("not within the time")


async def test_a_swapped_configmap_is_reloaded_and_a_bad_one_said_once(
    simulator: SimulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for s in ("srv-a", "srv-b"):
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, s, image_server_body(s))
    volume = tmp_path / "config"
    volume.mkdir()
    mount(volume, 1, config(simulator.url, ["srv-a"]))
    (volume / "config.yaml").symlink_to("..data/config.yaml")
    path = volume / "config.yaml"
    e = Exporter(
        load_config(path, env={}), loader=lambda: load_config(path, env={}),
        retry_policy=RetryPolicy(retries=0), config_path=str(path), config_check_interval=0.05,
    )  # fmt: skip
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        mount(volume, 2, config(simulator.url, ["srv-a", "srv-b"]))
        await until(lambda: len(e.poller.targets) == 2)
        assert value(text(e), RELOAD_OK) == 1
        mount(volume, 3, {"targets": "not a list"})
        await until(lambda: value(text(e), RELOAD_OK) == 0)
        await asyncio.sleep(0.3)  # several checks of the same bad content
        assert len(e.poller.targets) == 2  # the running configuration stays
        assert caplog.text.count("reload rejected") == 1
    finally:
        await e.stop()
