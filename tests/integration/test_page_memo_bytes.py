"""What the page memo keeps of a list: positions for every item, objects only for those the
sweep watches, and dev servers' IDs bounded; another sweep of the same list is another
reading."""

from __future__ import annotations

import re
from dataclasses import replace

from exporter.cloud.transport import RetryPolicy
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.runtime import Exporter
from exporter.simulator import SimulatorServer
from exporter.simulator.devservers import add_dev_server
from tests.helpers import AK, PROJECT, SK, devserver_body, image_id, image_server_body, settings

SERVERS = SweepKey(Resource.IMAGE_SERVER, PROJECT)


def exporter(simulator: SimulatorServer, *sweeps: Sweep) -> Exporter:
    base = settings(simulator.url)
    return Exporter(replace(base, sweeps=sweeps), retry_policy=RetryPolicy(retries=0))


def servers_sweep(url: str, include: str | None = None) -> Sweep:
    discovery = Discovery(name_include=re.compile(include) if include else None)
    return Sweep(SERVERS, url, AkSkCredentials(AK, SK), discovery)


async def test_the_memo_keeps_objects_only_for_what_the_sweep_watches(
    simulator: SimulatorServer,
) -> None:
    for n in range(1000):
        sid = f"srv-{n:04d}"
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    held = {}
    for include in ("none-.*", None):  # nothing watched; everything watched
        e = exporter(simulator, servers_sweep(simulator.url, include))
        try:
            snap = await e.run_cycle()
            pages = [page for _, page, _ in e.client._pages._pages.values()]
            positions = sum(len(page.ids) for page in pages)
            assert positions >= 1000 and e.client._pages.bytes == sum(p.weight for p in pages)
            held[include] = (positions, sum(len(page.objects) for page in pages))
            assert len(snap.targets) == (0 if include else 1000)
        finally:
            await e.stop()
    # Objects only where watched: it held all 1,000 whatever the filter.
    assert held["none-.*"][1] == 0 and held[None][1] == held[None][0]


async def test_a_changed_filter_reads_the_memo_again_not_its_old_objects(
    simulator: SimulatorServer,
) -> None:
    for sid in ("keep-1", "drop-1"):
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    e = exporter(simulator, servers_sweep(simulator.url, "server keep-.*"))
    try:
        first = await e.run_cycle()
        assert {t.key.id for t in first.targets} == {"keep-1"}
        await e.apply(replace(settings(simulator.url), sweeps=(servers_sweep(simulator.url),)))
        second = await e.run_cycle()
        assert {t.key.id for t in second.targets} == {"keep-1", "drop-1"}
    finally:
        await e.stop()


async def test_long_dev_server_ids_are_kept_as_digests(simulator: SimulatorServer) -> None:
    cloud = simulator.cloud
    img = image_id(1)
    cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, img, devserver_body(img))
    for n in range(50):
        add_dev_server(cloud, PROJECT, f"{n:04d}" + "x" * 1000, "RUNNING", devserver_body(img))
    sweep = Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), simulator.url,
                  AkSkCredentials(AK, SK))  # fmt: skip
    e = exporter(simulator, sweep)
    try:
        snap = await e.run_cycle()
        [usage] = snap.usage
        assert usage.objects == 50 and usage.in_use[0].servers == (("RUNNING", 50),)
        [(_, page, _)] = e.client._server_pages._pages.values()
        assert all(len(s.id) <= 64 for s in page.items) and len({s.id for s in page.items}) == 50
    finally:
        await e.stop()
