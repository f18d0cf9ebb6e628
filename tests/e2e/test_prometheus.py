"""The shipped rules and dashboard against a real Prometheus scraping the demo exporter."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import require_tool, start_exporter, stop_exporter
from tests.prom import JOB, Prometheus, generated_rules, prometheus, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "huaweicloud-image-exporter.json"
# How a user shortens the rules for a demo: the generator's documented flags.
TUNING = ["--pending-scale", "0.01", "--stuck-after", "5s", "--build-too-long", "1h"]
# Grafana's variables as "All" selects them, and a rate window the short run can fill.
VARIABLES = {"$job": ".*", "$project": ".*", "$resource": ".*", "$__rate_interval": "1m"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Prometheus, str]]:
    """The demo exporter and a Prometheus scraping it every second with the tuned rules."""
    require_tool("prometheus")
    exporter, exporter_url = await start_exporter("--demo")
    try:
        targets = [exporter_url.removeprefix("http://")]
        # The same exporter scraped again as another job: what HA replicas look like.
        async with prometheus(tmp_path, targets, generated_rules(*TUNING), targets) as prom:
            yield prom, exporter_url
    finally:
        await stop_exporter(exporter)


def cookbook() -> list[tuple[str, str]]:
    """The queries of docs/queries.md, each under its heading."""
    text = (ROOT / "docs" / "queries.md").read_text()
    found = re.findall(r"^## (.+?)$.*?```promql\n(.+?)```", text, re.M | re.S)
    assert len(found) >= 8, "docs/queries.md holds fewer than eight queries"
    return found


def panel_queries(job: str = ".*") -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in {**VARIABLES, "$job": job}.items():
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

        async def job_failed() -> dict[str, str] | None:
            return (await prom.firing(s)).get("HuaweiCloudImageBuildJobFailed")

        # The demo's image build fails at 20 s: the alert names the type and error code.
        failed = await wait_for("the build-job failure alert", job_failed)
        assert (failed["job_type"], failed["error_code"]) == ("BUILD_IMAGE", "WKS.0500")

        async def firing() -> dict[tuple[str, str], dict[str, str]]:
            # By alert and object: the demo has more than one server stuck (with a 5 s
            # threshold, the team project's new CREATING server is stuck too).
            found = {(a["alertname"], a.get("name", "")): a for a in await prom.firing_all(s)}
            wanted = (
                ("HuaweiCloudImageServerError", "data-science-lab"),
                ("HuaweiCloudImageServerStuck", "cad-workstation"),
            )
            return found if all(w in found for w in wanted) else {}

        async def build_too_long() -> dict[str, str] | None:
            return (await prom.firing(s)).get("HuaweiCloudImageBuildJobTooLong")

        # The demo's gold-image build has been RUNNING for two hours; the threshold is 1h.
        long_build = await wait_for("the long-build alert", build_too_long)
        assert (long_build["job_type"], long_build["status"]) == ("BUILD_IMAGE", "RUNNING")

        async def inactive_in_use() -> dict[str, str] | None:
            return (await prom.firing(s)).get("HuaweiCloudDevServerImageInactiveInUse")

        # The team project's retired INACTIVE image still runs on two dev servers.
        in_use = await wait_for("the INACTIVE-image-in-use alert", inactive_in_use)
        assert in_use["name"] == "Team-PyTorch-1.13-X86-retired"

        # The demo serves every family #25 added, each with samples (the unused team image is
        # retired at 24 s: a dev-server image status change).
        async def families() -> bool:
            for name in ("huaweicloud_workspace_image_job_duration_seconds_count",
                         "huaweicloud_workspace_image_job_running_start_timestamp_seconds",
                         "huaweicloud_modelarts_devserver_image_servers",
                         "huaweicloud_workspace_image_server_status_transitions_total",
                         "huaweicloud_modelarts_devserver_image_status_transitions_total"):  # fmt: skip
                if not (await prom.api(s, "query", query=name))["result"]:
                    return False
            return True

        await wait_for("every new family to have samples", families)

        alerts = await wait_for("the ERROR and stuck-BUILDING alerts to fire", firing)
        assert alerts[("HuaweiCloudImageServerStuck", "cad-workstation")]["status"] == "BUILDING"
        assert alerts[("HuaweiCloudImageServerError", "data-science-lab")]["severity"] == "critical"

        # Every panel's query evaluates and returns data (the demo throttles and fails some
        # calls, so the error panels have data too); so does every query of the cookbook.
        empty = []
        for title, expr in [*panel_queries(), *cookbook()]:
            data = await prom.api(s, "query", query=expr)
            if not data["result"]:
                empty.append(f"{title}: {expr}")
        assert not empty, "panels and queries without data:\n" + "\n".join(empty)

        # Panels about objects count each object once, however many replicas export it:
        # over both jobs they answer what they answer for one, at the same instant. The two
        # jobs scrape a second apart, so the instant must be one at which both last scraped
        # the same poll cycle: across a change (the demo retires an image at 24 s) one job
        # still holds the old status and the other the new, which no query can reconcile.
        async def same_cycle() -> str | None:
            at = str(time.time())
            stamps = await prom.api(s, "query", time=at,
                                    query="huaweicloud_image_exporter_last_poll_timestamp_seconds")  # fmt: skip
            seen = {r["metric"]["job"]: r["value"][1] for r in stamps["result"]}
            return at if len(seen) == 2 and len(set(seen.values())) == 1 else None

        at = await wait_for("both jobs to have scraped the same poll cycle", same_cycle)
        per_object = ("Targets", "Objects", "by status", "current status", "Time since",
                      "Dev servers by image", "no server runs")  # fmt: skip
        both = panel_queries()
        one = panel_queries(job=JOB)
        checked = 0
        for (title, expr_all), (_, expr_one) in zip(both, one, strict=True):
            if not any(word in title for word in per_object) or "api_calls" in expr_all:
                continue  # API calls per cycle are each process's own, shown per instance
            results = []
            for expr in (expr_all, expr_one):
                data = await prom.api(s, "query", query=expr, time=at)
                results.append(sorted((sorted(r["metric"].items()), r["value"][1])
                                      for r in data["result"]))  # fmt: skip
            assert results[0] == results[1], f"{title} counts replicas twice"
            checked += 1
        assert checked >= 9

        # Prometheus asks for gzip: each cycle's stream is made from the previous one's
        # groups, and every scrape of every cycle so far was read whole.
        cycles = await prom.api(
            s, "query", query="changes(huaweicloud_image_exporter_last_poll_timestamp_seconds[10m])"
        )
        assert min(float(r["value"][1]) for r in cycles["result"]) >= 3
        failed = await prom.api(s, "query", query="min_over_time(up[10m]) < 1")
        assert failed["result"] == [], failed["result"]


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
