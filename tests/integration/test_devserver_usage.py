"""Which images the dev servers run: the dev-server list sweep against the simulated cloud,
its paging, its cost, its failures, and the usage family it feeds."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.sharding import Shard, owner
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatedCloud, SimulatorServer, devservers
from exporter.simulator.cloud import dev_servers_key
from exporter.simulator.devservers import add_dev_server, set_server_status
from tests.helpers import AK, PROJECT, SK, devserver_body, image_id, settings, value

SERVERS = "huaweicloud_modelarts_devserver_image_servers"
USED, IDLE, STRANGER = image_id(1), image_id(2), image_id(3)
MINE_PATH = f"/v1/{PROJECT}/dev-servers"
DEVSERVER_PATH = f"{MINE_PATH}/all"  # every user's, the default


def sweep(url: str, project: str = PROJECT, **discovery: object) -> Sweep:
    return Sweep(
        SweepKey(Resource.DEVSERVER_IMAGE, project), url, AkSkCredentials(AK, SK),
        Discovery(**discovery),  # type: ignore[arg-type]
    )  # fmt: skip


def make(
    simulator: SimulatorServer,
    *sweeps: Sweep,
    shard: Shard | None = None,
    state: Path | None = None,
) -> Exporter:
    base = settings(simulator.url, [], [])
    return Exporter(
        replace(base, sweeps=sweeps or (sweep(simulator.url),)),
        retry_policy=RetryPolicy(retries=0),
        shard=shard,
        storage_path=str(state) if state else None,
    )


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def servers(e: Exporter, image: str, status: str, watched: str = "true") -> float | None:
    return value(
        text(e), SERVERS, project_id=PROJECT, id=image, server_status=status, watched=watched
    )


def sweep_value(e: Exporter, family: str) -> float | None:
    name = f"huaweicloud_image_exporter_sweep_{family}"
    return value(text(e), name, resource="devserver", project_id=PROJECT)


@pytest.fixture
def fleet(simulator: SimulatorServer) -> SimulatedCloud:
    """Two watched images (one in use, one not) and a server running an image nobody
    watches."""
    cloud = simulator.cloud
    for img in (USED, IDLE):
        cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, img, devserver_body(img))
    add_dev_server(cloud, PROJECT, "ds-1", "RUNNING", devserver_body(USED))
    add_dev_server(cloud, PROJECT, "ds-2", "STOPPED", devserver_body(USED))
    add_dev_server(cloud, PROJECT, "ds-3", "RUNNING", devserver_body(STRANGER))
    return cloud


async def test_servers_are_counted_per_image_and_status(
    simulator: SimulatorServer, fleet: SimulatedCloud
) -> None:
    e = make(simulator)
    try:
        await e.run_cycle()
        assert servers(e, USED, "RUNNING") == 1
        assert servers(e, USED, "STOPPED") == 1
        assert servers(e, IDLE, "RUNNING") == 0  # watched, no server: still a series
        assert servers(e, IDLE, "STOPPED") is None  # no zero series for every status
        assert servers(e, STRANGER, "RUNNING", watched="false") == 1
        assert sweep_value(e, "up") == 1 and sweep_value(e, "objects") == 3
        assert sweep_value(e, "pages") == 1 and sweep_value(e, "complete") == 1
        set_server_status(fleet, PROJECT, "ds-2", "RUNNING")
        await e.run_cycle()
        assert servers(e, USED, "RUNNING") == 2
        assert servers(e, USED, "STOPPED") is None  # a count that went to none is gone
    finally:
        await e.stop()


async def test_an_image_filtered_out_by_discovery_is_in_use_but_not_watched(
    simulator: SimulatorServer, fleet: SimulatedCloud
) -> None:
    e = make(simulator, sweep(simulator.url, server_type="BMS"))  # the images are ECS
    try:
        await e.run_cycle()
        assert servers(e, USED, "RUNNING", watched="false") == 1
        assert servers(e, USED, "RUNNING") is None
    finally:
        await e.stop()


@pytest.mark.parametrize("offset", ["item", "page"])
@pytest.mark.parametrize(("scope", "total", "cap", "default", "calls"), [
    ("mine", 3, None, None, 1),
    ("mine", 1024, None, None, 1),
    ("mine", 1025, None, None, 2),  # whole pages: 1,024, then offset 1,024
    ("mine", 5000, None, None, 5),  # ceil(5000 / 1024)
    ("mine", 1200, 500, None, 3),  # a gateway that serves 500 a page whatever limit says
    ("all", 5000, None, None, 1),  # every user's, whole in one answer
    ("all", 2500, None, 10, 4),  # a first page of 10 by default: read again, 1,024 a page
    ("all", 2500, 500, 10, 6),  # ... from a gateway that serves 500 a page
])  # fmt: skip
async def test_the_sweep_reads_whole_pages_right_under_either_reading_of_offset(
    simulator: SimulatorServer, offset: str, scope: str, total: int, cap: int | None,
    default: int | None, calls: int,
) -> None:  # fmt: skip
    # Under the page reading (page = offset // limit), an offset that is not a whole number
    # of pages would serve the wrong servers: 2,500 were counted as 2,048.
    cloud = simulator.cloud
    cloud.page_cap, cloud.devserver_offset, cloud.devserver_all_page = cap, offset, default
    cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, USED, devserver_body(USED))
    for n in range(total):
        add_dev_server(cloud, PROJECT, f"ds-{n:05d}", "RUNNING", devserver_body(USED))
    e = make(simulator, sweep(simulator.url, servers=scope))
    try:
        await e.run_cycle()
        assert servers(e, USED, "RUNNING") == total
        assert cloud.paths[MINE_PATH if scope == "mine" else DEVSERVER_PATH] == calls
        assert sweep_value(e, "pages") == calls and sweep_value(e, "complete") == 1
        assert sweep_value(e, "objects") == total
    finally:
        await e.stop()


def first_page_changed(cloud: SimulatedCloud, **changes: object) -> None:
    """The next answer of the dev-server lists is their first page, as served now, with
    ``changes`` made to it."""
    answer = devservers.page(cloud, PROJECT, {"limit": "1024", "offset": "0"})
    assert answer is not None
    body = json.dumps({**answer, **changes}).encode()
    cloud.faults[dev_servers_key(PROJECT)] = Fault(FaultKind.BODY, body=body, times=1)


async def test_a_page_numbered_other_than_asked_makes_the_sweep_incomplete(
    simulator: SimulatorServer, fleet: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    first_page_changed(fleet, current=7)  # pages are numbered from 0 or 1
    e = make(simulator, sweep(simulator.url, servers="mine"))
    try:
        caplog.set_level(logging.WARNING)
        await e.run_cycle()
        assert sweep_value(e, "complete") == 0
        assert "the first page says it is page 7, not 0 or 1" in caplog.text
    finally:
        await e.stop()


async def test_a_page_holding_more_servers_than_its_total_is_refused(
    simulator: SimulatorServer, fleet: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    first_page_changed(fleet, total=2)  # three servers in a list of two
    e = make(simulator)
    try:
        await e.run_cycle()
        assert sweep_value(e, "up") == 0
        assert "the page at offset 0 holds 3 items but the list counts 2" in caplog.text
    finally:
        await e.stop()


async def test_every_users_list_forbidden_falls_back_to_the_callers_own(
    simulator: SimulatorServer, fleet: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    add_dev_server(fleet, PROJECT, "ds-other", "RUNNING", devserver_body(USED), owner="colleague")
    e = make(simulator)
    try:
        await e.run_cycle()
        assert servers(e, USED, "RUNNING") == 2  # every user's: the colleague's too
        fleet.faults[dev_servers_key(PROJECT) + ":all"] = Fault(
            FaultKind.STATUS, status=403, error_code="ModelArts.0203"
        )
        caplog.set_level(logging.WARNING)
        await e.run_cycle()
        await e.run_cycle()
        assert servers(e, USED, "RUNNING") == 1  # the caller's own
        assert sweep_value(e, "up") == 1 and sweep_value(e, "list_allowed") == 0
        assert fleet.paths[DEVSERVER_PATH] == 2  # not asked again until FORBIDDEN_RETRY
        assert fleet.paths[MINE_PATH] == 2
        assert caplog.text.count("listing every user's dev servers is forbidden") == 1
        assert "grant modelarts:devserver:list" in caplog.text
    finally:
        await e.stop()


async def test_servers_that_move_while_the_list_is_read_make_it_incomplete(
    simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = simulator.cloud
    cloud.page_cap = 10
    cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, USED, devserver_body(USED))
    for n in range(30):
        add_dev_server(cloud, PROJECT, f"ds-{n:02d}", "RUNNING", devserver_body(USED))
    e = make(simulator, sweep(simulator.url, servers="mine"))
    try:
        await e.run_cycle()
        assert sweep_value(e, "complete") == 1
        served = cloud.requests[("devserver_list", 200)]

        def delete_first(project: str, page: int) -> None:
            if page == served + 2:  # after this sweep's first page: the rest move down
                del cloud.dev_servers[project][0]

        cloud.on_dev_server_page = delete_first
        caplog.set_level(logging.WARNING)
        await e.run_cycle()
        assert sweep_value(e, "complete") == 0
        assert (
            "list answer is incomplete (the total changed during the sweep): the servers per image count only those listed"
            in caplog.text
        )
        await e.run_cycle()  # the list holds still again
        assert sweep_value(e, "complete") == 1
        assert servers(e, USED, "RUNNING") == 29
    finally:
        await e.stop()


async def test_a_failed_sweep_keeps_the_counts_marked_down(
    simulator: SimulatorServer, fleet: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    e = make(simulator)
    try:
        await e.run_cycle()
        fleet.faults[dev_servers_key(PROJECT)] = Fault(FaultKind.STATUS, status=500)
        caplog.set_level(logging.WARNING)
        await e.run_cycle()
        await e.run_cycle()
        assert sweep_value(e, "up") == 0
        assert servers(e, USED, "RUNNING") == 1  # the last count, kept
        assert sweep_value(e, "list_allowed") == 1
        assert caplog.text.count("sweep failed") == 1  # once, not every cycle
        fleet.faults.clear()
        await e.run_cycle()
        assert sweep_value(e, "up") == 1
    finally:
        await e.stop()


async def restarted(
    simulator: SimulatorServer, state: Path, shard: Shard | None = None
) -> Exporter:
    """An exporter started on ``state``, serving what it restored (no cycle run yet)."""
    e = make(simulator, shard=shard, state=state)
    await e.start(schedule=False)
    return e


async def test_a_restart_with_the_state_file_serves_the_counts_before_the_first_cycle(
    simulator: SimulatorServer, fleet: SimulatedCloud, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first = make(simulator, state=state)
    await first.run_cycle()
    os.utime(state, ns=(0, 0))
    set_server_status(fleet, PROJECT, "ds-3", "STOPPED")
    await first.run_cycle()
    await first.stop()
    # A count that changed alone is no reason to write the whole file: it rides along with
    # the next write, and the first cycle after a start lists the servers again anyway.
    assert state.stat().st_mtime_ns == 0
    second = await restarted(simulator, state)
    try:
        # Served at once, before any list call: the series have no gap beyond the restart.
        assert fleet.paths[DEVSERVER_PATH] == 2
        assert servers(second, USED, "RUNNING") == 1 and servers(second, USED, "STOPPED") == 1
        assert servers(second, IDLE, "RUNNING") == 0  # watched: worked out from the objects
        assert servers(second, STRANGER, "RUNNING", watched="false") == 1  # as last written
        assert sweep_value(second, "up") == 1 and sweep_value(second, "objects") == 3
        # A first cycle whose list fails keeps the restored counts, marked down.
        fleet.faults[dev_servers_key(PROJECT)] = Fault(FaultKind.STATUS, status=500)
        await second.run_cycle()
        assert sweep_value(second, "up") == 0
        assert servers(second, USED, "RUNNING") == 1
    finally:
        await second.stop()


async def test_counts_restored_are_served_only_by_the_shard_that_sweeps_the_project(
    simulator: SimulatorServer, fleet: SimulatedCloud, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first = make(simulator, state=state)
    await first.run_cycle()
    await first.stop()
    # A copy of the file handed to each of two shards (one process split in two).
    restored = []
    for index in range(2):
        copy = tmp_path / f"state-{index}.json"
        copy.write_bytes(state.read_bytes())
        e = await restarted(simulator, copy, Shard(index, 2))
        try:
            restored.append(text(e).count(SERVERS + "{"))
        finally:
            await e.stop()
    mine = owner(f"devserver_image/{PROJECT}", 2)
    assert restored[mine] == 4 and restored[1 - mine] == 0  # USED twice, IDLE, STRANGER


async def test_a_forbidden_list_says_so_with_what_to_grant(
    simulator: SimulatorServer, fleet: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    fleet.faults[dev_servers_key(PROJECT)] = Fault(
        FaultKind.STATUS, status=403, error_code="ModelArts.0203"
    )
    e = make(simulator)
    try:
        caplog.set_level(logging.WARNING)
        await e.run_cycle()
        assert sweep_value(e, "list_allowed") == 0 and sweep_value(e, "up") == 0
        assert servers(e, USED, "RUNNING") is None  # never listed: nothing said
        assert "the IAM user needs the action modelarts:devserver:listByUser" in caplog.text
        # The images themselves are still watched.
        assert value(text(e), "huaweicloud_modelarts_devserver_image_status",
                     project_id=PROJECT, id=USED, status="ACTIVE") == 1  # fmt: skip
    finally:
        await e.stop()


async def test_modelarts_not_offered_is_asked_again_only_after_the_retry_time(
    simulator: SimulatorServer, fleet: SimulatedCloud
) -> None:
    fleet.faults[dev_servers_key(PROJECT)] = Fault(
        FaultKind.STATUS, status=404, error_code="APIGW.0101"
    )
    e = make(simulator)
    try:
        await e.run_cycle()
        await e.run_cycle()
        assert fleet.paths[DEVSERVER_PATH] == 1
        assert sweep_value(e, "service_available") == 0
        assert sweep_value(e, "up") is None  # left out, as for the other sweeps
    finally:
        await e.stop()


async def test_each_project_is_swept_by_the_shard_that_owns_its_image_sweep(
    simulator: SimulatorServer,
) -> None:
    projects = [f"{n:02d}" + PROJECT[2:] for n in range(8)]
    cloud = simulator.cloud
    for p in projects:
        add_dev_server(cloud, p, "ds-1", "RUNNING", devserver_body(USED))
    sweeps = tuple(sweep(simulator.url, p) for p in projects)
    swept: list[set[str]] = []
    for index in range(2):
        before = {p: cloud.paths[f"/v1/{p}/dev-servers/all"] for p in projects}
        e = make(simulator, *sweeps, shard=Shard(index, 2))
        try:
            await e.run_cycle()
        finally:
            await e.stop()
        swept.append({p for p in projects if cloud.paths[f"/v1/{p}/dev-servers/all"] > before[p]})
        owned = {s.key.project_id for s in e.poller._assignment.sweeps}
        assert swept[-1] == owned
    assert swept[0].isdisjoint(swept[1]) and swept[0] | swept[1] == set(projects)


async def test_an_unchanged_page_is_not_read_again_and_a_changed_one_is(
    simulator: SimulatorServer, fleet: SimulatedCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.cloud.models import DevServerListModel

    parsed: list[bytes] = []
    real = DevServerListModel.model_validate_json

    def counting(data: bytes, **kwargs: object) -> DevServerListModel:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(DevServerListModel, "model_validate_json", counting)
    e = make(simulator)
    try:
        await e.run_cycle()
        await e.run_cycle()
        assert len(parsed) == 1  # the second cycle's page: the same bytes, not read again
        set_server_status(fleet, PROJECT, "ds-2", "RUNNING")
        await e.run_cycle()
        assert len(parsed) == 2 and servers(e, USED, "RUNNING") == 2
    finally:
        await e.stop()


async def test_a_server_without_an_id_is_counted_as_invalid_every_cycle(
    simulator: SimulatorServer, fleet: SimulatedCloud
) -> None:
    fleet.dev_servers[PROJECT].append({"name": "no id", "status": "RUNNING"})
    e = make(simulator)
    try:
        for cycle in (1, 2, 3):
            await e.run_cycle()
            skipped = e.registry.get_sample_value(
                "huaweicloud_image_exporter_invalid_items_total", {"api": "devserver_list_all"}
            )
            assert skipped == cycle
        assert sweep_value(e, "objects") == 3  # the others are counted
    finally:
        await e.stop()


async def test_a_watched_image_is_never_folded_into_other_however_many_images_run(
    simulator: SimulatorServer, fleet: SimulatedCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watched IDLE image retired and run by one server, while more than MAX_IMAGES
    # busier images run elsewhere: its own series, so the in-use alert can see it.
    monkeypatch.setattr("exporter.domain.usage.MAX_IMAGES", 3)
    fleet.set_status(Resource.DEVSERVER_IMAGE, PROJECT, IDLE, "INACTIVE")
    add_dev_server(fleet, PROJECT, "ds-idle", "RUNNING", devserver_body(IDLE))
    for n in range(10):
        for copy in range(3):
            add_dev_server(fleet, PROJECT, f"ds-{n}-{copy}", "RUNNING",
                           devserver_body(image_id(100 + n)))  # fmt: skip
    e = make(simulator)
    try:
        await e.run_cycle()  # the images are learnt (configured: none; discovered now)
        await e.run_cycle()
        assert servers(e, IDLE, "RUNNING") == 1 and servers(e, USED, "RUNNING") == 1
        other = [line for line in text(e).splitlines()
                 if line.startswith(SERVERS) and 'id="other"' in line]  # fmt: skip
        # Three series: the two watched images and the busiest other; the other nine (3
        # servers each) and the fleet's STRANGER (1) are one series.
        assert len(other) == 1 and other[0].endswith(" 28.0")
    finally:
        await e.stop()
