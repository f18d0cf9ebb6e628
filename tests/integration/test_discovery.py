"""Discovery against the simulated cloud: paging, shifting pages, fallbacks, failures,
deletion, filters, and a configuration that mixes discovery with explicit IDs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.cloud.transport import RetryPolicy
from exporter.config.errors import ConfigError
from exporter.config.load import load_config, parse_config
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.state import Snapshot
from exporter.domain.targets import Discovery, Origin, Resource, Sweep, SweepKey
from exporter.polling.jobs import JOB_CALLS
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatorServer
from exporter.simulator.cloud import list_key
from tests.helpers import AK, PROJECT, SK, devserver_body, image_id, image_server_body, settings

SERVERS = SweepKey(Resource.IMAGE_SERVER, PROJECT)
IMAGES = SweepKey(Resource.DEVSERVER_IMAGE, PROJECT)


def sweep(url: str, key: SweepKey = SERVERS, **kw: Any) -> Sweep:
    return Sweep(key, url, AkSkCredentials(AK, SK), **kw)


def put_servers(simulator: SimulatorServer, n: int, prefix: str = "srv") -> list[str]:
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    for sid in ids:
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    return ids


@pytest.fixture
async def make(simulator: SimulatorServer) -> AsyncIterator[Any]:
    started: list[Exporter] = []

    def build(
        *sweeps: Sweep, images: tuple[str, ...] = (), servers: tuple[str, ...] = ()
    ) -> Exporter:
        base = settings(simulator.url, images, servers, concurrency=8)
        e = Exporter(replace(base, sweeps=sweeps), retry_policy=RetryPolicy(retries=0))
        started.append(e)
        return e

    yield build
    for e in started:
        await e.stop()


def ids(snapshot: Snapshot) -> set[str]:
    return {t.key.id for t in snapshot.targets}


def list_requests(simulator: SimulatorServer, api: str = "image_server_list") -> int:
    return sum(n for (a, _), n in simulator.cloud.requests.items() if a == api)


async def test_paging_reads_every_object_once_in_one_call_per_hundred(
    simulator: SimulatorServer, make: Any
) -> None:
    servers = put_servers(simulator, 250)
    e = make(sweep(simulator.url))
    snap = await e.run_cycle()
    assert ids(snap) == set(servers)
    assert {t.origin for t in snap.targets} == {Origin.DISCOVERED}
    assert list_requests(simulator) == 3 and snap.sweeps[0].pages == 3
    assert snap.api_calls == 3 + JOB_CALLS  # and the project's build jobs
    assert sum(n for (a, _), n in simulator.cloud.requests.items() if a == "image_server") == 0


async def test_objects_shifting_between_pages_are_counted_once_and_never_dropped(
    simulator: SimulatorServer, make: Any
) -> None:
    servers = put_servers(simulator, 250)
    e = make(sweep(simulator.url))
    await e.run_cycle()

    def shift(resource: Resource, project: str, offset: int) -> None:
        # While the sweep runs, the first object goes and a new one comes first: the
        # pages after it move by one.
        if offset and "srv-new" not in {k[2] for k in simulator.cloud.objects}:
            simulator.cloud.delete(Resource.IMAGE_SERVER, PROJECT, servers[0])
            body = image_server_body("srv-new")
            simulator.cloud.objects = {(Resource.IMAGE_SERVER, PROJECT, "srv-new"): body,
                                       **simulator.cloud.objects}  # fmt: skip
            simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-new", body)

    simulator.cloud.on_list_page = shift
    snap = await e.run_cycle()
    simulator.cloud.on_list_page = None
    listed = [t.key.id for t in snap.targets]
    assert len(listed) == len(set(listed)), "an object was counted twice"
    assert set(servers[1:]) <= set(listed), "an object missed once while pages moved was dropped"
    snap = await e.run_cycle()
    assert set(servers[1:]) | {"srv-new"} <= ids(snap)
    assert all(t.missing == 0 for t in snap.targets if t.key.id != servers[0])


async def test_a_failing_page_fails_the_sweep_and_loses_nothing(
    simulator: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    servers = put_servers(simulator, 150)
    e = make(sweep(simulator.url))
    await e.run_cycle()
    # The second page starts at 99: consecutive pages overlap by one item.
    simulator.cloud.faults[list_key(Resource.IMAGE_SERVER, PROJECT, 99)] = Fault(
        FaultKind.STATUS, status=503
    )
    simulator.cloud.delete(Resource.IMAGE_SERVER, PROJECT, servers[0])
    for _ in range(3):
        snap = await e.run_cycle()
        assert ids(snap) == set(servers)
        assert not any(t.up for t in snap.targets)
        assert snap.sweeps[0].up is False and snap.sweeps[0].error_label == "ModelArts.0001"
    assert len([r for r in caplog.records if r.getMessage().startswith("sweep failed")]) == 1


async def test_deleted_object_leaves_after_two_complete_sweeps(
    simulator: SimulatorServer, make: Any
) -> None:
    servers = put_servers(simulator, 3)
    e = make(sweep(simulator.url))
    await e.run_cycle()
    simulator.cloud.delete(Resource.IMAGE_SERVER, PROJECT, servers[0])
    assert servers[0] in ids(await e.run_cycle())
    assert servers[0] not in ids(await e.run_cycle())


async def test_forbidden_list_falls_back_to_detail_calls_with_one_warning(
    simulator: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    servers = put_servers(simulator, 3)
    simulator.cloud.faults[list_key(Resource.IMAGE_SERVER, PROJECT)] = Fault(
        FaultKind.STATUS, status=403, error_code="WKS.0403"
    )
    e = make(sweep(simulator.url, configured=(servers[0],)), servers=(servers[0],))
    for _ in range(3):
        snap = await e.run_cycle()
        assert ids(snap) == {servers[0]} and snap.targets[0].up
        assert snap.sweeps[0].list_allowed is False
    warnings = [r for r in caplog.records if "workspace:imageServer:list" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    # The reason the status page shows names what to grant.
    error = snap.sweeps[0].error or ""
    assert "HTTP 403 WKS.0403: injected failure; the IAM user needs the action " in error
    assert error.split("the action ")[1].startswith("workspace:imageServer:list ")


async def test_incomplete_devserver_list_asks_for_missing_configured_ids(
    simulator: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    images = [image_id(n) for n in range(1, 6)]
    for i in images:
        simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, i, devserver_body(i))
    simulator.cloud.devserver_list_cap = 3
    e = make(sweep(simulator.url, IMAGES, configured=(images[4],)), images=(images[4],))
    for _ in range(2):
        snap = await e.run_cycle()
        assert ids(snap) == set(images[:3]) | {images[4]}
        assert snap.sweeps[0].complete is False
    assert simulator.cloud.requests[("devserver_image", 200)] == 2  # images[4], each cycle
    assert len([r for r in caplog.records if "incomplete" in r.getMessage()]) == 1
    simulator.cloud.delete(Resource.DEVSERVER_IMAGE, PROJECT, images[0])
    assert images[0] in ids(await e.run_cycle()), "an incomplete list removes nothing"


async def test_filters_go_to_the_api_or_are_applied_by_name(
    simulator: SimulatorServer, make: Any
) -> None:
    for n, (stype, name) in enumerate([("ECS", "prod-a"), ("ECS", "dev-b"), ("BMS", "prod-c")]):
        i = image_id(n + 1)
        simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, i,
                            devserver_body(i, server_type=stype, name=name))  # fmt: skip
    for sid, eps, name in [("s1", "0", "prod-1"), ("s2", "7", "prod-2"), ("s3", "0", "prod-tmp")]:
        body = image_server_body(sid, enterprise_project_id=eps, name=name)
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, body)
    e = make(
        sweep(simulator.url, IMAGES, discovery=Discovery(server_type="ECS",
              name_include=re.compile("prod-.*"))),
        sweep(simulator.url, discovery=Discovery(enterprise_project_id="0",
              name_exclude=re.compile(".*-tmp"))),
    )  # fmt: skip
    snap = await e.run_cycle()
    assert ids(snap) == {image_id(1), "s1"}


async def test_configuration_with_discovery_and_explicit_ids(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    put_servers(simulator, 120)
    simulator.cloud.put(
        Resource.IMAGE_SERVER, PROJECT, "srv-hidden", image_server_body("srv-hidden")
    )
    simulator.cloud.faults[list_key(Resource.DEVSERVER_IMAGE, PROJECT)] = Fault(
        FaultKind.STATUS, status=500
    )  # this project's images: no sweep asked for, so this fault must never be hit
    data = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"retries": 0},
        "targets": [{
            "project_id": PROJECT, "workspace_endpoint": simulator.url,
            "modelarts_endpoint": simulator.url,
            "image_servers": ["srv-0001", "srv-gone"],
            "discover": {"image_servers": {"name_exclude": "server srv-00.*"}},
        }],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path, env={})
    assert [(s.key, s.configured) for s in config.sweeps] == [(SERVERS, ("srv-0001", "srv-gone"))]
    e = Exporter(config, retry_policy=RetryPolicy(retries=0))
    try:
        snap = await e.run_cycle()
    finally:
        await e.stop()
    states = {t.key.id: t for t in snap.targets}
    # srv-0001 is kept although its name is excluded: configured IDs are always watched.
    assert states["srv-0001"].origin is Origin.CONFIGURED and states["srv-0001"].up
    assert states["srv-gone"].exists is False
    assert "srv-0002" not in states and states["srv-0100"].origin is Origin.DISCOVERED
    assert snap.api_calls == 2 + 1 + JOB_CALLS  # two pages, one detail call (srv-gone), jobs


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ({"discover": {"image_servers": {"name_include": "prod-("}}},
         "targets[0].discover.image_servers.name_include: 'prod-(' is not a regular expression"),
        ({"discover": {"devserver_images": {"server_type": "GPU"}}},
         "targets[0].discover.devserver_images.server_type"),
        ({"discover": {"image_servers": {"colour": "red"}}},
         "targets[0].discover.image_servers.colour: unknown key"),
        ({}, "discovers nothing"),
    ],
)  # fmt: skip
def test_bad_discover_blocks_name_the_field(target: dict[str, Any], words: str) -> None:
    data = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "targets": [{"project_id": PROJECT, "region": "cn-north-4", **target}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert any(words in p for p in info.value.problems), info.value.problems


def test_one_discover_block_per_project() -> None:
    entry = {"project_id": PROJECT, "region": "cn-north-4", "discover": {"image_servers": {}}}
    data = {"credentials": {"access_key": AK, "secret_key": SK}, "targets": [entry, entry]}
    with pytest.raises(ConfigError, match=r"targets\[1\].discover.image_servers: .* already"):
        parse_config(data, {})


async def test_simulator_refuses_large_pages_and_answers_unknown_paths_like_the_gateway(
    simulator: SimulatorServer,
) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{simulator.url}/v1/{PROJECT}/image-servers?limit=101") as r:
            assert r.status == 400
        async with s.get(f"{simulator.url}/v2/nowhere") as r:
            assert r.status == 404 and (await r.json())["error_code"] == "APIGW.0101"


@pytest.mark.parametrize(("cap", "pages"), [(37, 7), (1, 250), (100, 3)])
async def test_a_gateway_serving_short_pages_loses_no_image_server(
    simulator: SimulatorServer, make: Any, cap: int, pages: int
) -> None:
    servers = put_servers(simulator, 250)
    simulator.cloud.page_cap = cap
    e = make(sweep(simulator.url))
    snap = await e.run_cycle()
    assert ids(snap) == set(servers)
    [state] = snap.sweeps
    assert state.complete is True and state.objects == 250
    assert state.pages == pages == list_requests(simulator)


async def test_objects_deleted_mid_sweep_behind_short_pages_remove_nothing(
    simulator: SimulatorServer, make: Any
) -> None:
    servers = put_servers(simulator, 250)
    simulator.cloud.page_cap = 37
    e = make(sweep(simulator.url))
    await e.run_cycle()

    gone: list[str] = []
    cycle = 0

    def delete_one(resource: Resource, project: str, offset: int) -> None:
        # Once a cycle, an object of the first page goes: every later page moves by one.
        if offset and len(gone) < cycle:
            gone.append(servers[len(gone)])
            simulator.cloud.delete(Resource.IMAGE_SERVER, PROJECT, gone[-1])

    simulator.cloud.on_list_page = delete_one
    for cycle in (1, 2):  # noqa: B007 - delete_one reads it
        snap = await e.run_cycle()
        assert snap.sweeps[0].complete is False
        lasting = set(servers) - set(gone)
        assert lasting <= ids(snap)
        assert all(t.missing == 0 for t in snap.targets if t.key.id in lasting)
    simulator.cloud.on_list_page = None
    snap = await e.run_cycle()
    assert snap.sweeps[0].complete is True and set(servers[2:]) <= ids(snap)


async def test_devserver_images_list_is_one_call(simulator: SimulatorServer, make: Any) -> None:
    simulator.cloud.page_cap = 1  # the dev-server image list has no paging parameters
    e = make(sweep(simulator.url, IMAGES))
    await e.run_cycle()
    assert list_requests(simulator, "devserver_image_list") == 1


# --- hostile list answers: what a broken gateway may send, and what must not follow --------

SERVER_LIST = list_key(Resource.IMAGE_SERVER, PROJECT)


def _item(sid: str, **changes: object) -> dict[str, object]:
    return image_server_body(sid, **changes)


HOSTILE_LISTS = [
    ("an empty object", b"{}"),
    ("an error envelope", b'{"error_code": "WKS.0001", "error_msg": "no such project"}'),
    ("a negative count", json.dumps({"count": -5, "items": []}).encode()),
    ("a count that is a boolean", json.dumps({"count": True, "items": []}).encode()),
    ("a count that is text", json.dumps({"count": "7", "items": []}).encode()),
    ("a count of zero over a full page",
     json.dumps({"count": 0, "items": [_item(f"x-{n}") for n in range(100)]}).encode()),
    ("more items than the limit asked",
     json.dumps({"count": 150, "items": [_item(f"x-{n}") for n in range(150)]}).encode()),
    ("items that are not a list", json.dumps({"count": 1, "items": {"id": "x"}}).encode()),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body"), HOSTILE_LISTS, ids=[n for n, _ in HOSTILE_LISTS])
async def test_a_list_that_is_not_one_fails_the_sweep_and_removes_nothing(
    simulator: SimulatorServer, make: Any, name: str, body: bytes
) -> None:
    servers = put_servers(simulator, 120)
    e = make(sweep(simulator.url))
    await e.run_cycle()
    simulator.cloud.faults[SERVER_LIST] = Fault(FaultKind.BODY, body=body)
    for _ in range(3):  # more than the two complete sweeps that would drop an object
        snap = await e.run_cycle()
        assert ids(snap) == set(servers), name
        assert snap.sweeps[0].up is False and snap.sweeps[0].error_label == "invalid_response"


async def test_a_page_of_700000_items_is_refused_in_bounded_memory(
    simulator: SimulatorServer, make: Any
) -> None:
    import psutil

    put_servers(simulator, 3)
    e = make(sweep(simulator.url))
    await e.run_cycle()
    # 2.1 MB: under the 4 MiB cap of a page's body, so the item count is what refuses it.
    huge = b'{"count": 700000, "items": [' + b",".join([b"{}"] * 700_000) + b"]}"
    simulator.cloud.faults[SERVER_LIST] = Fault(FaultKind.BODY, body=huge)
    before = psutil.Process().memory_info().rss
    snap = await e.run_cycle()
    grown = psutil.Process().memory_info().rss - before
    assert snap.sweeps[0].up is False and len(snap.targets) == 3
    assert grown < 150 << 20, f"RSS grew {grown >> 20} MiB"  # was 3.67 GB


async def test_one_bad_item_costs_only_itself(simulator: SimulatorServer, make: Any) -> None:
    servers = put_servers(simulator, 50)
    # A lone surrogate (kept, cleaned), a field of the wrong type, IDs that would leave the
    # API path or carry a query: the page stands, the bad items are skipped and counted.
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-sur", _item("srv-sur"))
    for sid, body in [
        ("bad-type", _item("bad-type", status={"x": 1})),
        ("../../../../v3/auth/projects", _item("../../../../v3/auth/projects")),
        ("srv?x=1", _item("srv?x=1")),
        ("srv 1\r\nX: y", _item("srv 1\r\nX: y")),
    ]:
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, body)  # fmt: skip
    raw = json.dumps({"count": 55, "items": [
        json.loads(json.dumps(simulator.cloud.objects[(Resource.IMAGE_SERVER, PROJECT, k)]))
        for k in [*servers, "srv-sur", "bad-type", "../../../../v3/auth/projects", "srv?x=1",
                  "srv 1\r\nX: y"]]})  # fmt: skip
    raw = raw.replace('"description": "test"', '"description": "a \\ud800 lone surrogate"', 1)
    simulator.cloud.faults[SERVER_LIST] = Fault(FaultKind.BODY, body=raw.encode())
    e = make(sweep(simulator.url), servers=())
    snap = await e.run_cycle()
    assert snap.sweeps[0].up and ids(snap) == {*servers, "srv-sur"}
    skipped = e.registry.get_sample_value(
        "huaweicloud_image_exporter_invalid_items_total", {"api": "image_server_list"}
    )
    assert skipped == 4
    # Nothing was asked of any path but the list's.
    assert set(simulator.cloud.paths) <= {f"/v1/{PROJECT}/image-servers",
                                          f"/v1/{PROJECT}/image-server-jobs",
                                          f"/v1/{PROJECT}/image-server-sub-jobs"}  # fmt: skip


@pytest.mark.slow  # real time: pages answered half a second each
async def test_a_drip_fed_project_neither_holds_the_cycle_nor_starves_the_others(
    simulator: SimulatorServer,
) -> None:
    """Pages of one project answered 0.5 s each with thousands to read: the cycle still
    ends by its interval, and the healthy project's sweep is complete."""
    import time as _time

    slow_project, healthy = "slowproject", PROJECT
    for n in range(6000):  # 61 pages: 8 at a time, 0.5 s each, is about 4 s
        sid = f"slow-{n:05d}"
        simulator.cloud.put(Resource.IMAGE_SERVER, slow_project, sid, _item(sid))
    servers = put_servers(simulator, 150)
    simulator.cloud.faults[list_key(Resource.IMAGE_SERVER, slow_project)] = Fault(
        FaultKind.SLOW, delay=0.5
    )
    sweeps = (sweep(simulator.url), Sweep(SweepKey(Resource.IMAGE_SERVER, slow_project),
                                          simulator.url, AkSkCredentials(AK, SK)))  # fmt: skip
    base = settings(simulator.url, interval=2.0, timeout=1.0, concurrency=8)
    e = Exporter(replace(base, sweeps=sweeps), retry_policy=RetryPolicy(retries=0))
    try:
        started = _time.monotonic()
        snap = await e.run_cycle()
        took = _time.monotonic() - started
    finally:
        await e.stop()
    assert took < 2.0 + 1.0 + 0.5, took  # the interval, one request's timeout, some slack
    by_project = {s.key.project_id: s for s in snap.sweeps}
    assert by_project[healthy].up and by_project[healthy].complete
    assert {t.key.id for t in snap.targets if t.key.project_id == healthy} == set(servers)
    assert by_project[slow_project].up is False
    assert "time ran out" in (by_project[slow_project].error or "")
    assert snap.ready


async def test_unchanged_pages_are_not_read_again(
    simulator: SimulatorServer, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page answered with the same bytes as last time is neither validated nor converted
    again; a page that changed is, and only it."""
    from exporter.cloud import convert

    converted: list[str] = []
    real = convert.image_server

    def counting(m: Any) -> Any:
        converted.append(m.id)
        return real(m)

    monkeypatch.setattr(convert, "image_server", counting)
    servers = put_servers(simulator, 250)
    e = make(sweep(simulator.url), servers=())
    await e.run_cycle()
    assert len(converted) == 250 + 2  # three pages, overlapping by one
    converted.clear()
    second = await e.run_cycle()
    assert converted == [] and ids(second) == set(servers)
    simulator.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, servers[120], "ERROR")
    third = await e.run_cycle()
    assert servers[120] in converted and len(converted) == 100  # its page alone
    status = {t.key.id: t.obj.status for t in third.targets if t.obj is not None}
    assert status[servers[120]] == "ERROR" and status[servers[0]] == "ACTIVE"


async def test_a_page_with_a_bad_item_is_read_and_counted_every_time(
    simulator: SimulatorServer, make: Any
) -> None:
    put_servers(simulator, 3)
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "bad-type",
                        _item("bad-type", status={"x": 1}))  # fmt: skip
    e = make(sweep(simulator.url), servers=())
    for cycle in (1, 2, 3):
        await e.run_cycle()
        skipped = e.registry.get_sample_value(
            "huaweicloud_image_exporter_invalid_items_total", {"api": "image_server_list"}
        )
        assert skipped == cycle


async def test_a_large_list_answer_is_read_off_the_event_loop(
    simulator: SimulatorServer, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dev-server image list of several MB is parsed in a worker thread (14 MB read on
    the loop held it for 1.7 s); a small page is read on the loop, where it is cheaper."""
    import asyncio

    from exporter.cloud import client

    for n in range(6000):
        iid = image_id(n)
        simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, iid,
                            devserver_body(iid, name="image " + "n" * 200))  # fmt: skip
    threaded: list[str] = []
    real = asyncio.to_thread

    async def to_thread(func: Any, *args: Any) -> Any:
        if args and isinstance(getattr(args[0], "body", None), bytes):  # an answer to read
            threaded.append(f"{len(args[0].body)} bytes")
        return await real(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    put_servers(simulator, 5)
    e = make(sweep(simulator.url, IMAGES), sweep(simulator.url))
    snap = await e.run_cycle()
    assert len(snap.targets) == 6005
    # The image list (over 1 MiB) alone; not the page of 5 servers.
    assert len(threaded) == 1 and int(threaded[0].split()[0]) > client.OFF_LOOP_BODY
