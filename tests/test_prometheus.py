"""The shipped rules and dashboard against a real Prometheus scraping the demo exporter."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import require_tool, start_exporter, stop_exporter
from tests.prom import Prometheus, generated_rules, prometheus, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "huaweicloud-image-exporter.json"
# How a user shortens the rules for a demo: the generator's documented flags.
TUNING = ["--pending-scale", "0.01", "--stuck-after", "5s"]
# Grafana's variables as "All" selects them, and a rate window the short run can fill.
VARIABLES = {"$job": ".*", "$project": ".*", "$resource": ".*", "$__rate_interval": "1m"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Prometheus, str]]:
    """The demo exporter and a Prometheus scraping it every second with the tuned rules."""
    require_tool("prometheus")
    exporter, exporter_url = await start_exporter("--demo")
    try:
        targets = [exporter_url.removeprefix("http://")]
        async with prometheus(tmp_path, targets, generated_rules(*TUNING)) as prom:
            yield prom, exporter_url
    finally:
        await stop_exporter(exporter)


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
            found = await prom.firing(s)
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
