"""Reload without restart: POST /-/reload and SIGHUP."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.cloud.transport import RetryPolicy
from exporter.config.load import load_config
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from tests.helpers import AK, PROJECT, SK, image_server_body, start_exporter, stop_exporter, value

RELOAD_OK = "huaweicloud_image_exporter_config_last_reload_successful"
RELOAD_TIME = "huaweicloud_image_exporter_config_last_reload_success_timestamp_seconds"


def config(endpoint: str, servers: list[str], **poll: Any) -> dict[str, Any]:
    return {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "60s", "timeout": "2s", **poll},
        "targets": [
            {"project_id": PROJECT, "workspace_endpoint": endpoint, "image_servers": servers}
        ],
    }


@pytest.fixture
async def cloud_with_servers(simulator: SimulatorServer) -> SimulatorServer:
    for s in ("srv-a", "srv-b", "srv-c"):
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, s, image_server_body(s, "BUILDING"))
    return simulator


@pytest.fixture
async def running(
    cloud_with_servers: SimulatorServer, tmp_path: Path
) -> AsyncIterator[tuple[Exporter, str, Path]]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(cloud_with_servers.url, ["srv-a", "srv-b"])))
    e = Exporter(
        load_config(path, env={}),
        loader=lambda: load_config(path, env={}),
        retry_policy=RetryPolicy(retries=0),
    )
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    yield e, f"http://127.0.0.1:{e.addresses[0][1]}", path
    await e.stop()


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def since(out: str, sid: str) -> float | None:
    return value(out, "huaweicloud_image_exporter_status_last_change_timestamp_seconds",
                 resource="image_server", project_id=PROJECT, id=sid)  # fmt: skip


async def post_reload(base: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(base + "/-/reload") as r:
        return r.status, await r.text()


async def test_http_reload_keeps_removes_and_adds(
    running: tuple[Exporter, str, Path], cloud_with_servers: SimulatorServer
) -> None:
    e, base, path = running
    await e.run_cycle()
    first = text(e)
    kept_since = since(first, "srv-a")
    assert kept_since is not None and since(first, "srv-b") is not None
    loaded_at = value(first, RELOAD_TIME)

    path.write_text(yaml.safe_dump(config(cloud_with_servers.url, ["srv-a", "srv-c"])))
    assert (await post_reload(base))[0] == 200
    out = text(e)
    assert "srv-b" not in out, "a removed target left series behind"
    assert since(out, "srv-a") == kept_since, "a kept target lost its state"
    assert value(out, RELOAD_OK) == 1
    assert (value(out, RELOAD_TIME) or 0) >= (loaded_at or 0)
    # the added target is polled at once, not at the next scheduled cycle (60 s away)
    for _ in range(100):
        if since(text(e), "srv-c") is not None:
            break
        await asyncio.sleep(0.02)
    assert (
        value(
            text(e),
            "huaweicloud_image_exporter_target_up",
            resource="image_server",
            project_id=PROJECT,
            id="srv-c",
        )
        == 1
    )
    assert (
        value(
            text(e),
            "huaweicloud_image_exporter_targets",
            resource="image_server",
            origin="configured",
        )
        == 2
    )


async def test_bad_reload_is_rejected_and_old_config_keeps_running(
    running: tuple[Exporter, str, Path],
) -> None:
    e, base, path = running
    await e.run_cycle()
    good_time = value(text(e), RELOAD_TIME)
    path.write_text(yaml.safe_dump({"targets": [{"project_id": "bad id"}]}))
    status, body = await post_reload(base)
    assert status == 400
    assert "targets[0].project_id" in body and "old configuration" in body
    out = text(e)
    assert value(out, RELOAD_OK) == 0
    assert value(out, RELOAD_TIME) == good_time
    assert [t.key.id for t in e.poller.targets] == ["srv-a", "srv-b"]
    snap = await e.run_cycle()
    assert all(t.up for t in snap.targets)


async def test_reload_changes_the_interval(
    running: tuple[Exporter, str, Path], cloud_with_servers: SimulatorServer
) -> None:
    e, base, path = running
    path.write_text(yaml.safe_dump(config(cloud_with_servers.url, ["srv-a"], interval="120s")))
    assert (await post_reload(base))[0] == 200
    assert value(text(e), "huaweicloud_image_exporter_poll_interval_seconds") == 120


@pytest.mark.slow
async def test_sighup_reloads_the_running_process(
    cloud_with_servers: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(cloud_with_servers.url, ["srv-a"], interval="30s")))
    proc, base = await start_exporter("--config.file", str(path))
    try:

        async def metrics() -> str:
            async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
                return await r.text()

        async def until(check: Any) -> str:
            for _ in range(200):
                out = await metrics()
                if check(out):
                    return out
                await asyncio.sleep(0.05)
            raise AssertionError("condition not reached")

        await until(lambda out: 'id="srv-a"' in out)
        path.write_text(
            yaml.safe_dump(config(cloud_with_servers.url, ["srv-a", "srv-c"], interval="30s"))
        )
        proc.send_signal(signal.SIGHUP)
        await until(lambda out: 'huaweicloud_image_exporter_target_up{id="srv-c"' in out)

        path.write_text("targets: [")
        proc.send_signal(signal.SIGHUP)
        out = await until(lambda out: value(out, RELOAD_OK) == 0)
        assert 'id="srv-c"' in out and proc.returncode is None
    finally:
        code, err = await stop_exporter(proc)
    assert code == 0
    assert b"reload rejected" in err and b"invalid YAML" in err


def iam_config(endpoint: str, password: str, **poll: Any) -> dict[str, Any]:
    """Three projects authenticated with IAM tokens from one identity."""
    iam = {"username": "watcher", "password": password, "domain_name": "acme", "endpoint": endpoint}
    return {
        "credentials": {"iam": iam},
        "poll": {"interval": "60s", "timeout": "2s", **poll},
        "targets": [
            {
                "project_id": f"project{n}",
                "workspace_endpoint": endpoint,
                "image_servers": ["srv-a"],
            }
            for n in range(3)
        ],
    }


def tokens_issued(simulator: SimulatorServer) -> int:
    return simulator.cloud.requests[("iam_token", 201)]


async def test_reload_with_unchanged_credentials_issues_no_token_request(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    simulator.cloud.add_iam_user("acme", "watcher", "iam-pass-1")
    for n in range(3):
        body = image_server_body("srv-a", "ACTIVE")
        simulator.cloud.put(Resource.IMAGE_SERVER, f"project{n}", "srv-a", body)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(iam_config(simulator.url, "iam-pass-1")))
    e = Exporter(
        load_config(path, env={}),
        loader=lambda: load_config(path, env={}),
        retry_policy=RetryPolicy(retries=0),
    )
    try:
        snap = await e.run_cycle()
        assert all(t.up for t in snap.targets) and len(snap.targets) == 3
        assert tokens_issued(simulator) == 3
        for n in range(10):  # some reloads change other settings; credentials stay the same
            interval = "60s" if n % 2 else "90s"
            path.write_text(
                yaml.safe_dump(iam_config(simulator.url, "iam-pass-1", interval=interval))
            )
            await e.reload()
        snap = await e.run_cycle()
        assert all(t.up for t in snap.targets)
        assert tokens_issued(simulator) == 3, "a reload threw away IAM tokens"

        # New credentials are new authenticators: one login per project, once.
        simulator.cloud.add_iam_user("acme", "watcher", "iam-pass-2")
        path.write_text(yaml.safe_dump(iam_config(simulator.url, "iam-pass-2")))
        await e.reload()
        await e.run_cycle()
        await e.run_cycle()
        assert tokens_issued(simulator) == 6
    finally:
        await e.stop()
