"""Golden files: fixed simulator states rendered exactly, covering every contract edge case.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 python -m pytest tests/integration/test_golden.py``
and review the diff: these files are the public interface alerts and dashboards depend on.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.exposition.render import render
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatedCloud, SimulatorServer
from exporter.simulator.cloud import dev_servers_key, jobs_key, list_key
from exporter.simulator.devservers import add_dev_server, set_server_status
from exporter.simulator.iam import PROJECTS_KEY
from exporter.simulator.jobs import add_job, finish_job
from tests.helpers import (
    AK,
    PROJECT,
    SK,
    image_id,
    image_server_body,
    require_tool,
    settings,
)

GOLDEN = Path(__file__).parent / "golden"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
Step = Callable[[SimulatedCloud], None]


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def run_scenario(
    simulator: SimulatorServer,
    images: list[str],
    servers: list[str],
    steps: list[Step],
    sweeps: Callable[[str], tuple[Sweep, ...]] = lambda _: (),
    accounts: Callable[[str], tuple[Account, ...]] = lambda _: (),
) -> bytes:
    """Apply each step, poll once after it, and render the final snapshot in both formats."""
    clock = FakeClock()
    base = settings(simulator.url, images, servers, interval=60)
    base = replace(base, poll=replace(base.poll, projects_refresh_interval=1))
    e = Exporter(
        replace(base, sweeps=sweeps(simulator.url), accounts=accounts(simulator.url)),
        retry_policy=RetryPolicy(retries=0),
        clock=clock,
    )
    try:
        for step in steps:
            step(simulator.cloud)
            await e.run_cycle()
            clock.now += 60
    finally:
        await e.stop()
    snapshot = replace(e.exposition.snapshot, last_poll_duration=1.25)  # the one wall-time value
    return b"".join(render(snapshot).chunks(Format.TEXT))


def put_image(i: str, **fields: object) -> Step:
    return lambda c: c.put(Resource.DEVSERVER_IMAGE, PROJECT, i, {"image_id": i, **fields})


def put_server(s: str, body: dict[str, object]) -> Step:
    return lambda c: c.put(Resource.IMAGE_SERVER, PROJECT, s, body)


def steps(*parts: Step) -> Step:
    def run(c: SimulatedCloud) -> None:
        for p in parts:
            p(c)

    return run


STATUS_SERVERS = {
    f"srv-{s.lower()}": s for s in ("CREATING", "ACTIVE", "BUILDING", "BUILT", "ERROR", "DELETING")
}


def _all_statuses() -> tuple[list[str], list[str], list[Step]]:
    images = [image_id(n) for n in range(1, 5)]
    servers = [
        *STATUS_SERVERS,
        "srv-json-null",
        "srv-missing",
        "srv-null-string",
        "srv-undocumented",
    ]
    missing = image_server_body("srv-missing")
    del missing["status"]
    setup = steps(
        put_image(images[0], name="a", arch="ARM", server_type="BMS", status="ACTIVE"),
        put_image(images[1], name="b", arch="X86", server_type="ECS", status="INACTIVE"),
        put_image(images[2], name="c", arch="X86_64", server_type="HPS", status="FROZEN"),
        put_image(images[3], name="d", arch="ARM", server_type="ECS"),
        *(put_server(s, image_server_body(s, status)) for s, status in STATUS_SERVERS.items()),
        put_server("srv-json-null", image_server_body("srv-json-null", None)),
        put_server("srv-missing", missing),
        put_server("srv-null-string", image_server_body("srv-null-string", "null")),
        put_server("srv-undocumented", image_server_body("srv-undocumented", "MIGRATING")),
    )
    return images, servers, [setup]


TIMES = {
    "srv-ms-z": "2022-03-07T10:40:43.858Z",
    "srv-s-z": "2022-03-07T10:40:43Z",
    "srv-offset": "2022-03-07T18:40:43.858+08:00",
    "srv-naive": "2022-03-07T10:40:43",
    "srv-micro": "2022-03-07T10:40:43.123456+00:00",
    "srv-garbage": "yesterday",
    "srv-empty": "",
}


def _timestamps() -> tuple[list[str], list[str], list[Step]]:
    servers = [*TIMES, "srv-absent"]
    absent = image_server_body("srv-absent")
    del absent["create_time"], absent["update_time"]
    setup = steps(
        *(
            put_server(s, image_server_body(s, create_time=t, update_time=t))
            for s, t in TIMES.items()
        ),
        put_server("srv-absent", absent),
    )
    return [], servers, [setup]


def _absent_fields() -> tuple[list[str], list[str], list[Step]]:
    img = image_id(9)
    accounts: list[object] = [
        {"account": "x", "account_type": "ROBOT"},
        {"account": "y"},
        {"account": "z", "account_type": "USER"},
    ]
    setup = steps(
        put_image(img, status="ACTIVE"),
        put_server("srv-bare", {"id": "srv-bare", "status": "BUILT"}),
        put_server(
            "srv-null-accounts",
            image_server_body("srv-null-accounts", authorize_accounts=None, image_ref=None),
        ),
        put_server(
            "srv-odd-accounts", image_server_body("srv-odd-accounts", authorize_accounts=accounts)
        ),
    )
    return [img], ["srv-bare", "srv-null-accounts", "srv-odd-accounts"], [setup]


def _escaping() -> tuple[list[str], list[str], list[Step]]:
    img = image_id(10)
    nasty = 'quote " backslash \\ newline \n tab \t 中文 émoji 🚀 ' + "x" * 300
    setup = steps(
        put_image(img, name=nasty, arch='A"R\\M', server_type="ECS\nBMS", status="ACTIVE"),
        put_server(
            "srv-nasty", image_server_body("srv-nasty", name=nasty, enterprise_project_id='ü\\"')
        ),
    )
    return [img], ["srv-nasty"], [setup]


def _failure_semantics() -> tuple[list[str], list[str], list[Step]]:
    ok, gone, never = image_id(20), image_id(21), image_id(22)
    flaky = "srv-flaky"
    first = steps(
        put_image(ok, name="ok", status="ACTIVE"),
        put_image(gone, name="gone", status="ACTIVE"),
        put_server(flaky, image_server_body(flaky, "BUILDING")),
        lambda c: c.faults.__setitem__(
            (Resource.DEVSERVER_IMAGE, PROJECT, never), Fault(FaultKind.STATUS, status=503)
        ),
    )
    second = steps(
        lambda c: c.delete(Resource.DEVSERVER_IMAGE, PROJECT, gone),
        lambda c: c.faults.__setitem__(
            (Resource.IMAGE_SERVER, PROJECT, flaky), Fault(FaultKind.STATUS, status=500)
        ),
        lambda c: c.set_status(
            Resource.IMAGE_SERVER, PROJECT, flaky, "ERROR"
        ),  # unseen: poll fails
        lambda c: c.set_status(Resource.DEVSERVER_IMAGE, PROJECT, ok, "INACTIVE"),
    )
    return [ok, gone, never], [flaky], [first, second]


OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


def _discovery_sweeps(url: str) -> tuple[Sweep, ...]:
    creds = AkSkCredentials(AK, SK)
    no_scratch = Discovery(name_exclude=re.compile("scratch-.*"))
    return (
        Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), url, creds),
        Sweep(SweepKey(Resource.IMAGE_SERVER, PROJECT), url, creds, no_scratch,
              configured=("srv-configured", "srv-never")),
        Sweep(SweepKey(Resource.IMAGE_SERVER, OTHER_PROJECT), url, creds),
    )  # fmt: skip


def _discovery() -> tuple[list[str], list[str], list[Step]]:
    img = image_id(30)

    def server(project: str, sid: str, name: str, status: str = "ACTIVE") -> Step:
        return lambda c: c.put(
            Resource.IMAGE_SERVER, project, sid, image_server_body(sid, status, name=name)
        )

    first = steps(
        put_image(img, name="found", arch="ARM", server_type="BMS", status="ACTIVE"),
        server(PROJECT, "srv-configured", "listed by hand"),
        server(PROJECT, "srv-found", "found by the sweep", "BUILDING"),
        server(PROJECT, "srv-leaving", "deleted after the first sweep"),
        server(PROJECT, "srv-scratch", "scratch-1"),  # excluded by name
        server(OTHER_PROJECT, "srv-elsewhere", "in a project whose list then fails"),
    )
    second = steps(
        lambda c: c.delete(Resource.IMAGE_SERVER, PROJECT, "srv-leaving"),
        lambda c: c.faults.__setitem__(
            list_key(Resource.IMAGE_SERVER, OTHER_PROJECT), Fault(FaultKind.STATUS, status=500)
        ),
    )
    third = steps()  # srv-leaving: missing from a second complete sweep, so gone
    return [], ["srv-configured", "srv-never"], [first, second, third]


def _accounts(url: str) -> tuple[Account, ...]:
    return (
        Account("prod", AkSkCredentials(AK, SK), url,
                endpoints={Resource.DEVSERVER_IMAGE: {"cn-north-4": url}, Resource.IMAGE_SERVER: url},
                discovery={r: Discovery() for r in Resource}),
    )  # fmt: skip


def _account_projects() -> tuple[list[str], list[str], list[Step]]:
    def project(pid: str, name: str, enabled: bool = True) -> Step:
        def add(c: SimulatedCloud) -> None:
            c.add_project(pid, name, enabled=enabled)
            sid = f"srv-{pid}"
            c.put(Resource.IMAGE_SERVER, pid, sid, image_server_body(sid, name=f"in {name}"))

        return add

    first = steps(
        project("pnorth", "cn-north-4"),
        project("pteam", "cn-north-4_team"),
        project("platam", "la-south-2"),  # no ModelArts endpoint known there
        project("pold", "cn-north-4_old", enabled=False),
        lambda c: c.put(Resource.DEVSERVER_IMAGE, "pnorth", image_id(40),
                        {"image_id": image_id(40), "name": "north image", "status": "ACTIVE"}),
    )  # fmt: skip
    # The list then fails: the last one is kept (the refresh interval is 0 in golden runs).
    second = steps(
        lambda c: c.faults.__setitem__(PROJECTS_KEY, Fault(FaultKind.STATUS, status=503)),
    )
    return [], [], [first, second]


def _jobs() -> tuple[list[str], list[str], list[Step]]:
    """Image build jobs: a baseline at the first look, paging past a page of history, a
    long build whose end is found by its job, a new failure counted once, then the job
    lists failing (the last values are kept, marked down)."""
    servers = {"srv-a": "ERROR", "srv-b": "ACTIVE", "srv-c": "BUILDING"}
    held: dict[str, dict[str, object]] = {}

    def first(c: SimulatedCloud) -> None:
        for sid, status in servers.items():
            c.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid, status))
        # Oldest first: a build of srv-c that runs for hours, then history.
        held["long"] = add_job(c, PROJECT, "BUILD_IMAGE", "RUNNING", [("srv-c", "c")],
                               begin=START - 20_000)  # fmt: skip
        for n in range(250):
            add_job(c, PROJECT, "CREATE_SERVER", "SUCCESS", [(f"srv-old-{n}", "old")],
                    begin=START - 9_000, end=START - 8_000)  # fmt: skip
        add_job(c, PROJECT, "CREATE_SERVER", "SUCCESS", [("srv-a", "a"), ("srv-b", "b")],
                begin=START - 7_500, end=START - 7_200)  # fmt: skip
        # Failed before the exporter first looked: the baseline, not counted.
        add_job(c, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-b", "b"), ("srv-unwatched", "u")],
                begin=START - 5_500, end=START - 5_000,
                error=("WKS.0400", "old failure"))  # fmt: skip
        add_job(c, PROJECT, "DELETE_SERVER", "WAITING", [("srv-b", "b")], begin=START - 10)

    def second(c: SimulatedCloud) -> None:
        add_job(c, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START,
                end=START + 30, error=("WKS.0500", 'disk full: "/var" at 100%'))  # fmt: skip
        finish_job(held["long"], "SUCCESS", START + 45)

    def third(c: SimulatedCloud) -> None:
        c.faults[jobs_key(PROJECT)] = Fault(FaultKind.STATUS, status=503, error_code="WKS.0503")

    return [], list(servers), [first, second, steps(), third]


def _transitions() -> tuple[list[str], list[str], list[Step]]:
    """Status changes across five cycles: a build going round and starting again (the same
    change counted twice, and a third time by a twin in the same cycle), one into an
    undocumented status (counted as other), an image deactivated, one server that never
    changes."""
    img = image_id(1)

    def status(sid: str, value: str) -> Step:
        return put_server(sid, image_server_body(sid, value))

    first = steps(
        put_image(img, name="img", arch="ARM", server_type="BMS", status="ACTIVE"),
        status("srv-build", "ACTIVE"), status("srv-odd", "ACTIVE"), status("srv-calm", "ACTIVE"),
        status("srv-twin", "ACTIVE"),
    )  # fmt: skip
    second = steps(status("srv-build", "BUILDING"), status("srv-odd", "MIGRATING"))
    third = steps(
        status("srv-build", "BUILT"),
        put_image(img, name="img", arch="ARM", server_type="BMS", status="INACTIVE"),
    )
    fourth = steps(status("srv-build", "ACTIVE"))
    fifth = steps(status("srv-build", "BUILDING"), status("srv-twin", "BUILDING"))
    servers = ["srv-build", "srv-odd", "srv-calm", "srv-twin"]
    return [img], servers, [first, second, third, fourth, fifth]


def _usage_sweeps(url: str) -> tuple[Sweep, ...]:
    return (Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), url, AkSkCredentials(AK, SK)),)


def _usage() -> tuple[list[str], list[str], list[Step]]:
    """Dev servers per image: images in use (one INACTIVE), one no server runs but a
    DELETED one, one in use nobody watches, a server naming no image and one in an
    undocumented status; then a server stops, then the dev-server list fails (the counts
    are kept, marked down)."""
    used, inactive, idle, unwatched = (image_id(n) for n in (50, 51, 52, 53))

    def server(sid: str, status: str, image: str | None) -> Step:
        body = None if image is None else {"image_id": image, "name": "n", "status": "ACTIVE"}
        return lambda c: add_dev_server(c, PROJECT, sid, status, body)

    first = steps(
        put_image(used, name="used", status="ACTIVE"),
        put_image(inactive, name="retired", status="INACTIVE"),
        put_image(idle, name="idle", status="ACTIVE"),
        server("ds-1", "RUNNING", used), server("ds-2", "RUNNING", used),
        server("ds-3", "STOPPED", used), server("ds-4", "RUNNING", inactive),
        server("ds-5", "DELETED", idle), server("ds-6", "HIBERNATING", unwatched),
        server("ds-7", "CREATING", None),
    )  # fmt: skip
    second = steps(lambda c: set_server_status(c, PROJECT, "ds-2", "STOPPED"))
    third = steps(
        lambda c: c.faults.__setitem__(
            dev_servers_key(PROJECT), Fault(FaultKind.STATUS, status=500)
        )
    )
    return [], [], [first, second, third]


SCENARIOS = {
    "usage": _usage,
    "transitions": _transitions,
    "jobs": _jobs,
    "accounts": _account_projects,
    "discovery": _discovery,
    "all_statuses": _all_statuses,
    "timestamps": _timestamps,
    "absent_fields": _absent_fields,
    "escaping": _escaping,
    "failure_semantics": _failure_semantics,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_golden(simulator: SimulatorServer, name: str) -> None:
    images, servers, scenario = SCENARIOS[name]()
    sweeps = {"discovery": _discovery_sweeps, "usage": _usage_sweeps}.get(name, lambda _: ())
    accounts = _accounts if name == "accounts" else (lambda _: ())
    rendered = await run_scenario(simulator, images, servers, scenario, sweeps, accounts)
    path = GOLDEN / f"{name}.prom"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(rendered)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 and review it"
    assert rendered.decode() == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_promtool_accepts_golden(name: str) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=(GOLDEN / f"{name}.prom").read_bytes(),
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_openmetrics_rendering_of_golden_state() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from exporter.domain.health import Health
    from exporter.domain.state import DevServerImage, Snapshot, TargetState, observe_answer
    from exporter.domain.targets import TargetKey

    key = TargetKey(Resource.DEVSERVER_IMAGE, PROJECT, image_id(1))
    state: TargetState = observe_answer(
        None, key, DevServerImage('n"\\\n', "ARM", "BMS", "ACTIVE"), Health(True, START)
    )
    snap = Snapshot((state,), {Resource.DEVSERVER_IMAGE: 1}, 60.0, 1.0, START)
    body = b"".join(render(snap).chunks(Format.OPENMETRICS)) + b"# EOF\n"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}  # type: ignore[no-untyped-call]
    assert families["huaweicloud_modelarts_devserver_image"].type == "info"
    sample = families["huaweicloud_modelarts_devserver_image"].samples[0]
    assert sample.labels["name"] == 'n"\\\n'
