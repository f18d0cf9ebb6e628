"""The shipped rules and dashboard against a real Prometheus scraping the demo exporter."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.helpers import free_port, require_tool, start_exporter, stop_exporter

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "huaweicloud-image-exporter.json"
JOB = "huaweicloud-image-exporter"
# How a user shortens the rules for a demo: the generator's documented flags.
TUNING = ["--pending-scale", "0.01", "--stuck-after", "5s"]
# Grafana's variables as "All" selects them, and a rate window the short run can fill.
VARIABLES = {"$job": ".*", "$project": ".*", "$resource": ".*", "$__rate_interval": "1m"}


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    async def api(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        async with session.get(self.base + "/api/v1/" + path, params=params) as r:
            body = await r.json()
        assert body["status"] == "success", body
        return body["data"]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Prometheus, str]]:
    """The demo exporter and a Prometheus scraping it every second with the tuned rules."""
    prometheus = require_tool("prometheus")
    rules = subprocess.run(
        [sys.executable, "-m", "exporter.rules", *TUNING],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (tmp_path / "alerts.yml").write_text(rules)
    exporter, exporter_url = await start_exporter("--demo")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [{"targets": [exporter_url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(300):
                try:
                    async with s.get(base + "/-/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.returncode is None, "prometheus exited"
                await asyncio.sleep(0.1)
        yield Prometheus(base), exporter_url
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        await stop_exporter(exporter)


async def wait_for(what: str, check: Any, within: float = 90.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"unsubstituted variable in {panel['title']}: {expr}"
            queries.append((panel["title"], expr))
    return queries


async def test_rules_fire_and_every_panel_has_data(stack: tuple[Prometheus, str]) -> None:
    prom, _ = stack
    async with aiohttp.ClientSession() as s:

        async def target_up() -> bool:
            data = await prom.api(s, "targets")
            return any(t["health"] == "up" for t in data["activeTargets"])

        await wait_for("the exporter target to be up", target_up, within=30)

        async def firing() -> dict[str, dict[str, str]]:
            alerts = (await prom.api(s, "alerts"))["alerts"]
            found = {
                a["labels"]["alertname"]: a["labels"] for a in alerts if a["state"] == "firing"
            }
            wanted = ("HuaweiCloudImageServerError", "HuaweiCloudImageServerStuck")
            return found if all(w in found for w in wanted) else {}

        alerts = await wait_for("the ERROR and stuck-BUILDING alerts to fire", firing)
        assert alerts["HuaweiCloudImageServerError"]["name"] == "data-science-lab"
        assert alerts["HuaweiCloudImageServerStuck"]["name"] == "cad-workstation"
        assert alerts["HuaweiCloudImageServerStuck"]["status"] == "BUILDING"
        assert alerts["HuaweiCloudImageServerError"]["severity"] == "critical"

        # Every panel's query evaluates and returns data (the demo throttles and fails some
        # calls, so the error panels have data too).
        empty = []
        for title, expr in panel_queries():
            data = await prom.api(s, "query", query=expr)
            if not data["result"]:
                empty.append(f"{title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)


def test_dashboard_filters_and_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["datasource", "job", "project", "resource"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert re.search(r'job=~"\$job"', target["expr"]), (
                f"{panel['title']} ignores the job filter"
            )
