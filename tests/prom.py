"""A real Prometheus for tests: started on a free loopback port with given targets and rules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.helpers import free_port, require_tool

JOB = "huaweicloud-image-exporter"
REPLICA_JOB = "huaweicloud-image-exporter-replica"


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def api(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        async with session.get(self.base + "/api/v1/" + path, params=params) as r:
            body = await r.json()
        assert body["status"] == "success", body
        return body["data"]

    async def firing(self, session: aiohttp.ClientSession) -> dict[str, dict[str, str]]:
        """Firing alerts by name, with their labels (one of each name)."""
        return {a["alertname"]: a for a in await self.firing_all(session)}

    async def firing_all(self, session: aiohttp.ClientSession) -> list[dict[str, str]]:
        """The labels of every firing alert."""
        alerts = (await self.api(session, "alerts"))["alerts"]
        return [a["labels"] for a in alerts if a["state"] == "firing"]


def generated_rules(*tuning: str) -> str:
    """The rules as ``huaweicloud-image-exporter-rules`` writes them with these flags."""
    return subprocess.run(
        [sys.executable, "-m", "exporter.rules", *tuning],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


@asynccontextmanager
async def prometheus(
    workdir: Path,
    targets: Sequence[str],
    rules: str,
    replica_targets: Sequence[str] = (),
    alertmanagers: Sequence[str] = (),
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``targets`` (host:port) every second, evaluating ``rules``;
    ``replica_targets`` are scraped again as a second job, standing in for HA replicas;
    alerts go to ``alertmanagers`` (host:port)."""
    binary = require_tool("prometheus")
    (workdir / "alerts.yml").write_text(rules)
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    if replica_targets:
        config["scrape_configs"].append(
            {"job_name": REPLICA_JOB, "static_configs": [{"targets": list(replica_targets)}]}
        )
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc, "prometheus")
        yield Prometheus(base)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)


async def wait_ready(base: str, proc: asyncio.subprocess.Process, name: str) -> None:
    """Wait until ``base``/-/ready answers 200 (Prometheus and Alertmanager both have it)."""
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(base + "/-/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert proc.returncode is None, f"{name} exited"
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name} did not become ready in 30 s")


@asynccontextmanager
async def alertmanager(workdir: Path, config: dict[str, Any]) -> AsyncIterator[str]:
    """A real Alertmanager (Debian's prometheus-alertmanager) with ``config``; yields its
    host:port."""
    binary = require_tool(
        "prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager"
    )
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary, f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc, "alertmanager")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)


async def wait_for(what: str, check: Any, within: float = 90.0) -> Any:
    """Poll ``check`` every half second until it returns something true."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)
