"""End to end through real components: the exporter against the simulator, a real
Prometheus with the generated rules, a real Alertmanager with the shipped configuration,
and a webhook receiver. A stuck build's alert arrives with everything a person needs, and
an exporter restart with --storage.path does not resolve it."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from exporter.domain.targets import Resource
from exporter.simulator import SimulatorServer
from tests.helpers import (
    AK,
    PROJECT,
    SK,
    free_port,
    image_server_body,
    require_tool,
    serving,
    value,
)
from tests.prom import alertmanager, generated_rules, prometheus, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "docker" / "alertmanager.yml"
STUCK = "HuaweiCloudImageServerStuck"
STUCK_AFTER = 20  # seconds BUILDING before the alert fires
KEEP_FIRING = 8  # keep_firing_for, scaled down from 5m with --pending-scale
SINCE = "huaweicloud_image_exporter_status_last_change_timestamp_seconds"


def test_shipped_alertmanager_config_passes_amtool() -> None:
    amtool = require_tool("amtool", package="prometheus-alertmanager")
    done = subprocess.run(
        [amtool, "check-config", str(SHIPPED)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


class Receiver:
    """A webhook receiver: every notification Alertmanager sends, in order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response(text="ok")

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        return [
            a
            for n in self.notifications
            for a in n["alerts"]
            if a["labels"]["alertname"] == name and a["status"] == status
        ]


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.hook)
    async with serving(app) as base:
        yield r, f"{base}/hook"


def am_config(url: str) -> dict[str, Any]:
    """The shipped configuration, with the webhook as receiver and test-sized timings."""
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(SHIPPED.read_text()))
    config["receivers"] = [
        {"name": "default", "webhook_configs": [{"url": url, "send_resolved": True}]}
    ]
    config["route"].update(group_wait="0s", group_interval="1s")
    return config


async def start(config: Path, port: int, state: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "--config.file", str(config),
        "--web.listen-address", f"127.0.0.1:{port}", "--storage.path", str(state),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def since(session: aiohttp.ClientSession, base: str) -> float | None:
    try:
        async with session.get(base + "/metrics") as r:
            text = await r.text()
    except aiohttp.ClientError:
        return None
    return value(text, SINCE, resource="image_server", project_id=PROJECT, id="srv-stuck")


async def test_stuck_alert_reaches_the_receiver_and_survives_a_restart(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    body = image_server_body("srv-stuck", "BUILDING", name="cad-build")
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-stuck", body)
    config = tmp_path / "exporter.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "credentials": {"access_key": AK, "secret_key": SK},
                "poll": {"interval": "2s", "timeout": "1s"},
                "targets": [
                    {"project_id": PROJECT, "workspace_endpoint": simulator.url,
                     "image_servers": ["srv-stuck"]}
                ],
            }
        )
    )  # fmt: skip
    state = tmp_path / "state.json"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rules = generated_rules(
        "--stuck-after", f"{STUCK_AFTER}s", "--pending-scale", str(KEEP_FIRING / 300)
    )
    assert f"keep_firing_for: {KEEP_FIRING}s" in rules
    exporter = await start(config, port, state)
    try:
        async with (
            receiver() as (hook, url),
            alertmanager(tmp_path, am_config(url)) as am,
            prometheus(tmp_path, [f"127.0.0.1:{port}"], rules, alertmanagers=[am]),
            aiohttp.ClientSession() as session,
        ):

            async def fired() -> list[dict[str, Any]]:
                return hook.alerts(STUCK, "firing")

            (alert, *_) = await wait_for("the stuck alert at the receiver", fired, 90)
            assert alert["labels"]["severity"] == "warning"
            assert alert["labels"]["id"] == "srv-stuck"
            notes = alert["annotations"]
            assert notes["summary"] == "Image server cad-build stuck in BUILDING"
            assert "cad-build (srv-stuck, project " + PROJECT in notes["description"]
            assert "has been BUILDING for" in notes["description"]
            assert notes["runbook_url"].endswith("docs/runbook.md#huaweicloudimageserverstuck")
            before = await since(session, base)
            assert before is not None

            # Restart: down long enough for Prometheus to miss scrapes, then back with the
            # same state file.
            exporter.terminate()
            assert await asyncio.wait_for(exporter.wait(), 15) == 0
            await asyncio.sleep(2)
            exporter = await start(config, port, state)

            async def back() -> float | None:
                return await since(session, base)

            assert await wait_for("the restarted exporter", back, 30) == before
            # Longer than keep_firing_for, and than it takes a resolve to be sent.
            await asyncio.sleep(KEEP_FIRING + 6)
            assert hook.alerts(STUCK, "resolved") == []
            async with session.get(f"http://{am}/api/v2/alerts") as r:
                active = [a for a in await r.json() if a["labels"]["alertname"] == STUCK]
            assert active and active[0]["status"]["state"] == "active"
            assert await since(session, base) == before
    finally:
        if exporter.returncode is None:
            exporter.terminate()
            await asyncio.wait_for(exporter.wait(), 15)
