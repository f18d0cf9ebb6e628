"""A running exporter with a metric denylist: /metrics leaves the families out, the start
log and the status page say what is dropped and which shipped alerts and panels need it."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from exporter.cli import DEMO_POLL
from exporter.config.settings import Settings
from exporter.exposition.selection import Selection
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from exporter.simulator.demo import build_demo_cloud, demo_accounts, demo_targets
from tests.helpers import samples, status_page


async def test_a_denylist_drops_families_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    simulator = SimulatorServer(build_demo_cloud())
    endpoint = await simulator.start()
    settings = Settings(
        poll=DEMO_POLL, targets=demo_targets(endpoint), accounts=demo_accounts(endpoint)
    )
    select = Selection.parse(".*_timestamp_seconds,process_.*", allow=False)
    e = Exporter(settings, select=select)
    try:
        await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
        await e.run_cycle()
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{e.addresses[0][1]}/metrics") as r,
        ):
            body = await r.text()
        page = await status_page(e)
    finally:
        await e.stop()
        await simulator.stop()
    names = {name for name, _ in samples(body)}
    assert "huaweicloud_workspace_image_server_status" in names
    assert not {n for n in names if n.endswith("_timestamp_seconds") or n.startswith("process_")}
    assert "_timestamp_seconds" not in body and "process_" not in body  # nor their headers
    denied = "--metric-denylist=.*_timestamp_seconds,process_.*"
    assert f"{denied}: " in caplog.text and " metric families not served: " in caplog.text
    assert (
        "the shipped alert HuaweiCloudImageServerStuck needs "
        "huaweicloud_image_exporter_status_last_change_timestamp_seconds, which "
        f"{denied} drops" in caplog.text
    )
    assert f'<p class="notice">{denied}: ' in page
    assert '<p class="notice">Shipped alerts and dashboard panels that read them show ' in page
    assert (
        "; dashboard panel &#x27;Longest running builds&#x27; needs "
        "huaweicloud_workspace_image_job_running_start_timestamp_seconds" in page
    )
    assert page.index('role="status"') < page.index('class="notice"')  # the fleet first
