"""The metric contract as a whole: docs/metrics.md matches the code, scrapes are consistent."""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.cloud.transport import RetryPolicy
from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials, MetadataSource
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import Fault, FaultKind, SimulatorServer
from exporter.simulator.devservers import add_dev_server
from exporter.simulator.jobs import add_job
from tests.helpers import AK, PROJECT, SK, devserver_body, image_id, image_server_body, settings

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW_RE = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<type>\w+) \|(?P<labels>[^|]*)\|")


def readme_table() -> dict[str, tuple[str, frozenset[str]]]:
    text = METRICS_DOC.read_text()
    table = text.split("<!-- metrics-table -->")[1].split("<!-- /metrics-table -->")[0]
    rows = {}
    for line in table.splitlines():
        m = ROW_RE.match(line)
        if m:
            labels = frozenset(x.strip() for x in m["labels"].split(",") if x.strip())
            rows[m["name"]] = (m["type"], labels)
    return rows


async def code_families(
    simulator: SimulatorServer, state: Path
) -> dict[str, tuple[str, frozenset[str]]]:
    """Every huaweicloud_* family the exporter serves, with the label names its samples carry."""
    img, srv, bad = image_id(1), "srv-1", image_id(2)
    simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, img, devserver_body(img))
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, srv, image_server_body(srv))
    # A listed item with an ID of no documented shape, so that invalid_items has samples.
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "../x", image_server_body("../x"))
    simulator.cloud.faults[(Resource.DEVSERVER_IMAGE, PROJECT, bad)] = Fault(
        FaultKind.STATUS, status=500
    )
    # A dev server running the image, and one running an image nobody watches.
    add_dev_server(simulator.cloud, PROJECT, "ds-1", "RUNNING", devserver_body(img))
    add_dev_server(simulator.cloud, PROJECT, "ds-2", "STOPPED", devserver_body(image_id(3)))
    base = settings(simulator.url, [img, bad], [srv])
    # A sweep of the project's image servers, so that the sweep families have samples too.
    swept = Sweep(SweepKey(Resource.IMAGE_SERVER, PROJECT), simulator.url,
                  AkSkCredentials(AK, SK), configured=(srv,))  # fmt: skip
    # And of its dev-server images, so that their dev servers are counted.
    images = Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), simulator.url,
                   AkSkCredentials(AK, SK), configured=(img, bad))  # fmt: skip
    # And an account with one project, so that the account families have samples too; it
    # signs with an agency's temporary keys, so that the credentials families have too.
    simulator.cloud.add_project("acc0project", "cn-north-4")
    account = Account("prod", MetadataSource(simulator.url), simulator.url,
                      endpoints={r: simulator.url for r in Resource},
                      discovery={Resource.IMAGE_SERVER: Discovery()},
                      sts_endpoint=simulator.url)  # fmt: skip
    # And a state file, so that its families are served too.
    e = Exporter(
        replace(base, sweeps=(swept, images), accounts=(account,)),
        retry_policy=RetryPolicy(retries=0),
        storage_path=str(state),
    )
    try:
        await e.run_cycle()
        # Status changes, so that the transition counters have samples.
        simulator.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, srv, "BUILDING")
        simulator.cloud.set_status(Resource.DEVSERVER_IMAGE, PROJECT, img, "INACTIVE")
        # A build still running, so that its begin time is served.
        add_job(simulator.cloud, PROJECT, "CREATE_SERVER", "RUNNING", [(srv, "s")],
                begin=time.time() - 600)  # fmt: skip
        # A build that fails after the first look, so that the job families have samples.
        add_job(simulator.cloud, PROJECT, "BUILD_IMAGE", "FAILED", [(srv, "s")],
                begin=time.time() - 60, end=time.time(), error=("WKS.0500", "boom"))  # fmt: skip
        await e.run_cycle()
        body = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
    finally:
        await e.stop()
    found = {}
    for family in text_string_to_metric_families(body):
        if not family.name.startswith("huaweicloud_"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        found[name] = (family.type, labels)
    return found


async def test_readme_metrics_table_matches_code(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    documented = readme_table()
    served = await code_families(simulator, tmp_path / "state.json")
    assert set(documented) == set(served), (
        f"in code, not in docs/metrics.md: {sorted(set(served) - set(documented))}; "
        f"in docs/metrics.md, not in code: {sorted(set(documented) - set(served))}"
    )
    for name, (kind, labels) in served.items():
        assert documented[name] == (kind, labels), (
            f"{name}: docs/metrics.md says {documented[name]}, code has {(kind, labels)}"
        )


@pytest.mark.slow
async def test_concurrent_scrapes_see_only_whole_snapshots(simulator: SimulatorServer) -> None:
    """Every object flips status together each cycle; no scrape may mix two cycles."""
    servers = [f"srv-{n:04d}" for n in range(300)]
    for s in servers:
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, s, image_server_body(s, "ACTIVE"))
    e = Exporter(
        settings(simulator.url, [], servers, concurrency=32), retry_policy=RetryPolicy(retries=0)
    )
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    host, port = e.addresses[0]
    url = f"http://{host}:{port}/metrics"
    seen: set[str] = set()
    bodies = 0
    stop = asyncio.Event()

    async def scraper(session: aiohttp.ClientSession, encoding: str, accept: str) -> None:
        nonlocal bodies
        while not stop.is_set():
            headers = {"Accept-Encoding": encoding, "Accept": accept}
            async with session.get(url, headers=headers) as r:
                raw = await r.read()
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            text = raw.decode()
            if accept:
                assert text.endswith("# EOF\n") and text.count("# EOF") == 1
                text = text.removesuffix("# EOF\n")
            current = [
                line for line in text.splitlines()
                if line.startswith("huaweicloud_workspace_image_server_status{") and line.endswith(" 1.0")
            ]  # fmt: skip
            if current:
                statuses = {re.search(r'status="(\w+)"', line)[1] for line in current}  # type: ignore[index]
                assert len(statuses) == 1, f"a scrape mixed cycles: {statuses}"
                assert len(current) == len(servers)
                seen.update(statuses)
            bodies += 1

    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            tasks = [
                asyncio.create_task(scraper(session, enc, acc))
                for enc in ("identity", "gzip")
                for acc in ("", "application/openmetrics-text; version=1.0.0")
                for _ in range(2)
            ]
            for n in range(6):
                status = ("ACTIVE", "BUILDING")[n % 2]
                for s in servers:
                    simulator.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, s, status)
                await e.run_cycle()
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        await e.stop()
    assert seen == {"ACTIVE", "BUILDING"}
    assert bodies >= 8
