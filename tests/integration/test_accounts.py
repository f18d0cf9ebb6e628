"""Whole accounts: projects found through IAM, refreshed on their own interval, swept."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.config.errors import ConfigError
from exporter.config.load import parse_config
from exporter.config.settings import PollSettings
from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials, IamCredentials
from exporter.domain.state import Snapshot
from exporter.domain.targets import Discovery, Origin, Resource, Sweep, SweepKey
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatorServer
from exporter.simulator.iam import DOMAIN_ID, DOMAINS_KEY, PROJECTS_KEY
from exporter.simulator.keys import CALLER_KEY
from tests.helpers import (
    AK,
    SK,
    devserver_body,
    image_id,
    image_server_body,
    settings,
    targets,
)

NORTH, SOUTHEAST, LATAM, OFF, SUB = "pnorth", "psoutheast", "platam", "poff", "pnorthsub"


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def account(url: str, **kw: Any) -> Account:
    """Every project's image servers and dev-server images; no ModelArts in la-south-2."""
    fields: dict[str, Any] = {
        "name": "prod", "credentials": AkSkCredentials(AK, SK), "iam_endpoint": url,
        "sts_endpoint": url,
        "endpoints": {Resource.DEVSERVER_IMAGE: {"cn-north-4": url, "ap-southeast-3": url},
                      Resource.IMAGE_SERVER: url},
        "discovery": {r: Discovery() for r in Resource},
    }  # fmt: skip
    fields.update(kw)
    return Account(**fields)


@pytest.fixture
async def cloud(simulator: SimulatorServer) -> SimulatorServer:
    c = simulator.cloud
    for pid, name in [(NORTH, "cn-north-4"), (SOUTHEAST, "ap-southeast-3"), (LATAM, "la-south-2"),
                      (SUB, "cn-north-4_team")]:  # fmt: skip
        c.add_project(pid, name)
        c.put(Resource.IMAGE_SERVER, pid, f"srv-{pid}", image_server_body(f"srv-{pid}"))
        c.put(Resource.DEVSERVER_IMAGE, pid, image_id(len(pid)), devserver_body(image_id(len(pid))))
    c.add_project(OFF, "cn-north-4_old", enabled=False)
    c.put(Resource.IMAGE_SERVER, OFF, "srv-off", image_server_body("srv-off"))
    c.add_project("d0", "acme", is_domain=True)
    return simulator


@pytest.fixture
async def make(cloud: SimulatorServer) -> AsyncIterator[Any]:
    started: list[Exporter] = []

    def build(*accounts: Account, clock: Clock | None = None, **kw: Any) -> Exporter:
        base = settings(cloud.url, **kw)
        base = replace(base, poll=replace(base.poll, projects_refresh_interval=600))
        e = Exporter(replace(base, accounts=accounts), retry_policy=RetryPolicy(retries=0),
                     clock=clock or Clock())  # fmt: skip
        started.append(e)
        return e

    yield build
    for e in started:
        await e.stop()


def watched(snap: Snapshot) -> set[tuple[str, str]]:
    return {(t.key.resource.value, t.key.project_id) for t in snap.targets}


async def test_projects_over_three_regions_skip_disabled_and_unserved(
    cloud: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    e = make(account(cloud.url))
    caplog.set_level(logging.INFO, logger="exporter")
    snap = await e.run_cycle()
    assert watched(snap) == {
        ("image_server", NORTH), ("image_server", SOUTHEAST), ("image_server", LATAM),
        ("image_server", SUB), ("devserver_image", NORTH), ("devserver_image", SOUTHEAST),
        ("devserver_image", SUB),
    }  # fmt: skip
    info = {p.id: (p.name, p.region, p.account) for p in snap.projects}
    assert info[SUB] == ("cn-north-4_team", "cn-north-4", "prod") and OFF not in info
    assert "d0" not in info, "the domain itself is no project"
    assert snap.accounts[0].up and snap.accounts[0].projects == 4
    assert {t.origin for t in snap.targets} == {Origin.DISCOVERED}
    await e.run_cycle()
    unserved = [r for r in caplog.records if "no known devserver_image endpoint" in r.getMessage()]
    assert len(unserved) == 1, "a region without an endpoint is logged once"


async def test_region_and_name_filters(cloud: SimulatorServer, make: Any) -> None:
    e = make(account(cloud.url, regions=frozenset({"cn-north-4", "la-south-2"}),
                     project_exclude=re.compile(".*_team")))  # fmt: skip
    snap = await e.run_cycle()
    assert {p.id for p in snap.projects} == {NORTH, LATAM}
    e2 = make(account(cloud.url, project_include=re.compile("cn-north-4.*")))
    assert {p.id for p in (await e2.run_cycle()).projects} == {NORTH, SUB}


async def test_projects_appear_and_vanish_between_refreshes(
    cloud: SimulatorServer, make: Any
) -> None:
    clock = Clock()
    e = make(account(cloud.url), clock=clock)
    await e.run_cycle()
    cloud.cloud.add_project("pnew", "ap-southeast-3")
    cloud.cloud.put(Resource.IMAGE_SERVER, "pnew", "srv-new", image_server_body("srv-new"))
    cloud.cloud.remove_project(LATAM)
    clock.now += 60  # a poll, not yet a refresh: the lists stay as they were
    snap = await e.run_cycle()
    assert ("image_server", LATAM) in watched(snap) and "pnew" not in {p.id for p in snap.projects}
    assert cloud.cloud.requests[("iam_projects", 200)] == 1
    clock.now += 600  # the refresh is due: the new project is swept at once, the old one goes
    snap = await e.run_cycle()
    assert ("image_server", "pnew") in watched(snap)
    assert LATAM not in {p.id for p in snap.projects} and ("image_server", LATAM) not in watched(
        snap
    )
    assert not any(s.key.project_id == LATAM for s in snap.sweeps)


async def test_failing_project_list_keeps_the_last_one(
    cloud: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    e = make(account(cloud.url), clock=clock)
    first = await e.run_cycle()
    cloud.cloud.faults[PROJECTS_KEY] = Fault(FaultKind.STATUS, status=503)
    for _ in range(2):
        clock.now += 700
        snap = await e.run_cycle()
        assert watched(snap) == watched(first)
        state = snap.accounts[0]
        assert (state.up, state.projects, state.error_label) == (False, 4, "ModelArts.0001")
        assert state.last_success == first.accounts[0].last_success
    assert len([r for r in caplog.records if "cannot list the account" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("fault", "label"),
    [(Fault(FaultKind.STATUS, status=401, error_code="APIGW.0301"), "APIGW.0301"),
     (Fault(FaultKind.STATUS, status=403, error_code="IAM.0003"), "IAM.0003"),
     (Fault(FaultKind.HTML), "invalid_response")],
    ids=["401", "403", "not JSON"],
)  # fmt: skip
async def test_a_bad_first_answer_is_an_error_never_an_empty_fleet(
    cloud: SimulatorServer, make: Any, fault: Fault, label: str
) -> None:
    cloud.cloud.faults[PROJECTS_KEY] = fault
    snap = await make(account(cloud.url)).run_cycle()
    assert snap.accounts[0].up is False and snap.accounts[0].error_label == label
    assert snap.accounts[0].projects is None and not snap.targets


async def test_bad_projects_are_skipped_and_counted_and_the_rest_stands(
    cloud: SimulatorServer, make: Any
) -> None:
    cloud.cloud.projects += [
        {"name": "cn-north-4_broken", "enabled": True},  # no ID
        {"id": "../../v3/auth/tokens", "name": "cn-north-4", "enabled": True},  # no ID shape
        {"id": NORTH, "name": "cn-north-4", "enabled": True},  # listed twice
        {"id": "pbad", "name": {"a name": "that is no string"}, "enabled": True},
        {"id": "psur", "name": "cn-north-4_\ud800x", "enabled": True},  # a lone surrogate
    ]
    e = make(account(cloud.url))
    snap = await e.run_cycle()
    assert snap.accounts[0].up and snap.accounts[0].projects == 5
    assert sorted(p.id for p in snap.projects) == sorted([NORTH, SOUTHEAST, LATAM, SUB, "psur"])
    assert {p.name for p in snap.projects if p.id == "psur"} == {"cn-north-4_?x"}
    skipped = e.registry.get_sample_value(
        "huaweicloud_image_exporter_invalid_items_total", {"api": "iam_projects"}
    )
    assert skipped == 3


async def test_targets_and_accounts_overlapping_poll_each_project_once(
    cloud: SimulatorServer, make: Any
) -> None:
    sweep = Sweep(SweepKey(Resource.IMAGE_SERVER, NORTH), cloud.url, AkSkCredentials(AK, SK),
                  Discovery(name_include=re.compile("nothing")))  # fmt: skip
    e = make(account(cloud.url))
    mine = targets(cloud.url, images=[image_id(len(SOUTHEAST))], project=SOUTHEAST)
    e.poller.reconfigure(mine, poll=PollSettings(interval=30, concurrency=8), sweeps=(sweep,))
    snap = await e.run_cycle()
    keys = [s.key for s in snap.sweeps]
    assert len(keys) == len(set(keys))
    # The configured sweep of NORTH wins (its filter keeps nothing); the account's is skipped.
    assert ("image_server", NORTH) not in watched(snap)
    configured = {t.key.id: t.origin for t in snap.targets if t.origin is Origin.CONFIGURED}
    assert configured == {image_id(len(SOUTHEAST)): Origin.CONFIGURED}, configured
    assert cloud.cloud.requests[("devserver_image", 200)] == 0, "found by the sweep, no detail"


async def test_service_not_offered_is_a_metric_not_a_warning(
    cloud: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from exporter.simulator.cloud import list_key

    cloud.cloud.faults[list_key(Resource.DEVSERVER_IMAGE, SOUTHEAST)] = Fault(
        FaultKind.STATUS, status=404, error_code="APIGW.0101"
    )
    clock = Clock()
    e = make(account(cloud.url), clock=clock)
    for _ in range(3):
        snap = await e.run_cycle()
        clock.now += 60
    state = next(s for s in snap.sweeps if s.key == SweepKey(Resource.DEVSERVER_IMAGE, SOUTHEAST))
    assert state.unavailable_until is not None
    assert cloud.cloud.requests[("devserver_image_list", 404)] == 1, "not asked again for a while"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_iam_password_credentials_list_with_a_domain_token(
    cloud: SimulatorServer, make: Any
) -> None:
    cloud.cloud.add_iam_user("acme", "watcher", "iam-pass-1")
    creds = IamCredentials("watcher", "iam-pass-1", "acme", cloud.url)
    snap = await make(account(cloud.url, credentials=creds)).run_cycle()
    assert snap.accounts[0].up and all(t.up for t in snap.targets)
    # One domain-scoped token for the list, then one per project swept.
    assert cloud.cloud.requests[("iam_token", 201)] == 1 + 4


async def test_aksk_list_carries_the_domain_id(cloud: SimulatorServer, make: Any) -> None:
    await make(account(cloud.url, domain_id="d0")).run_cycle()
    assert cloud.cloud.domain_ids == ["d0"]
    assert cloud.cloud.requests[("iam_domains", 200)] == 0  # configured: never asked


async def test_aksk_without_domain_id_finds_it_once_and_sends_it_every_time(
    cloud: SimulatorServer, make: Any
) -> None:
    cloud.cloud.require_domain_id = True  # a gateway that refuses the list without it
    clock = Clock()
    e = make(account(cloud.url), clock=clock)
    for _ in range(3):
        snap = await e.run_cycle()
        assert snap.accounts[0].up and snap.accounts[0].projects == 4
        clock.now += 601  # the project list is due again
    assert cloud.cloud.domain_ids == [DOMAIN_ID] * 3
    assert cloud.cloud.requests[("iam_domains", 200)] == 1


@pytest.mark.parametrize("domains", ["forbidden", "empty"])
async def test_no_listed_domain_asks_sts_who_the_caller_is(
    cloud: SimulatorServer, make: Any, domains: str
) -> None:
    cloud.cloud.require_domain_id = True
    if domains == "forbidden":
        cloud.cloud.faults[DOMAINS_KEY] = Fault(FaultKind.STATUS, status=403, error_code="IAM.0002")
    else:
        cloud.cloud.faults[DOMAINS_KEY] = Fault(FaultKind.BODY, body=b'{"domains": []}')
    snap = await make(account(cloud.url)).run_cycle()
    assert snap.accounts[0].up and snap.accounts[0].projects == 4
    assert cloud.cloud.requests[("sts_caller_identity", 200)] == 1
    assert cloud.cloud.domain_ids == [DOMAIN_ID]  # the account ID STS gave


async def test_a_failing_domain_lookup_is_a_clear_account_reason(
    cloud: SimulatorServer, make: Any
) -> None:
    cloud.cloud.faults[DOMAINS_KEY] = Fault(FaultKind.STATUS, status=403, error_code="IAM.0002")
    cloud.cloud.faults[CALLER_KEY] = Fault(FaultKind.STATUS, status=403, error_code="STS.0003")
    snap = await make(account(cloud.url)).run_cycle()
    [state] = snap.accounts
    assert not state.up and state.error_label == "STS.0003"
    assert state.error is not None
    assert re.fullmatch(
        r"HTTP 403 STS\.0003: cannot find the account's domain ID with GET /v3/auth/domains "
        r"or STS's GET /v5/caller-identity \(injected failure; the IAM user lacks a permission "
        r"this call needs\); set domain_id in the account's configuration "
        r"\(request id [0-9a-f]{32}\)",
        state.error,
    )
    assert cloud.cloud.domain_ids == []  # no project list sent without it


@pytest.mark.parametrize(
    ("accounts", "words"),
    [([{"name": "a"}, {"name": "a"}], "accounts[1].name: 'a' is taken by accounts[0]"),
     ([{"name": "a", "regions": ["mars-1"]}], "accounts[0].regions[0]: 'mars-1'"),
     ([{"name": "a", "project_include": "("}], "accounts[0].project_include"),
     ([{"name": "a", "discover": {}}], "accounts[0].discover: discovers nothing"),
     ([{"name": ""}], "accounts[0].name")],
)  # fmt: skip
def test_bad_accounts_name_the_field(accounts: list[dict[str, Any]], words: str) -> None:
    data = {"credentials": {"access_key": AK, "secret_key": SK}, "accounts": accounts}
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert any(words in p for p in info.value.problems), info.value.problems


def test_accounts_alone_make_a_configuration() -> None:
    data = {"credentials": {"access_key": AK, "secret_key": SK},
            "accounts": [{"name": "prod", "regions": ["cn-north-4"]}]}  # fmt: skip
    config = parse_config(data, {})
    (a,) = config.accounts
    assert not config.targets and set(a.discovery) == set(Resource)
    assert (
        a.endpoint(Resource.DEVSERVER_IMAGE, "cn-north-4")
        == "https://modelarts.cn-north-4.myhuaweicloud.com"
    )


async def test_reload_adds_an_account_at_once_and_removing_it_removes_its_objects(
    cloud: SimulatorServer, make: Any
) -> None:
    e = make()
    assert not (await e.run_cycle()).targets
    with_account = replace(settings(cloud.url), accounts=(account(cloud.url),))
    await e.apply(with_account)
    for _ in range(100):  # the added account is listed and swept in the background, at once
        if e.exposition.snapshot.targets:
            break
        await asyncio.sleep(0.02)
    snap = e.exposition.snapshot
    assert {p.id for p in snap.projects} >= {NORTH, SOUTHEAST, LATAM, SUB}
    assert ("image_server", NORTH) in watched(snap)
    await e.apply(replace(with_account, accounts=()))
    snap = e.exposition.snapshot
    assert not snap.targets and not snap.sweeps and not snap.accounts


async def test_thousands_of_projects_in_unknown_regions_are_a_few_log_lines(
    cloud: SimulatorServer, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(20_000):
        cloud.cloud.add_project(f"pmars{n}", f"mars-{n}")
    caplog.set_level(logging.INFO, logger="exporter")
    e = make(account(cloud.url, endpoints={}))  # no endpoint for any region
    snap = await e.run_cycle()
    assert snap.accounts[0].projects == 20_004
    lines = [r for r in caplog.records if "no known" in r.getMessage()]
    assert len(lines) <= 20 + 10, len(lines)  # was one per project and resource: 40,008
