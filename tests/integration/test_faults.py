"""Faults through the whole exporter: each keeps the others polling and says clearly what broke."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import aiohttp
import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.config.settings import PollSettings
from exporter.domain.credentials import IamCredentials
from exporter.domain.targets import Resource, Target
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatedCloud, SimulatorServer
from tests.helpers import PROJECT, devserver_body, image_id, image_server_body, settings, value

SICK = "srv-sick"
WELL = "srv-well"
IMG = image_id(1)
POLICY = RetryPolicy(retries=1, base=0.01, cap=0.02, throttle_min=0.01, throttle_max=0.02)


@dataclass(frozen=True)
class Case:
    name: str
    label: str  # the error_code label counted for the image_server API
    fault: Fault | None = None
    endpoint: Callable[[str], str] | None = None  # replaces the sick target's endpoint


def _refused(_: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


CASES = [
    Case("hang past the timeout", "timeout", Fault(FaultKind.HANG, delay=30)),
    Case("5xx", "ModelArts.0001", Fault(FaultKind.STATUS, status=503)),
    Case("429 storm", "APIGW.0308", Fault(FaultKind.THROTTLE, retry_after="0")),
    Case("malformed JSON", "invalid_response", Fault(FaultKind.MALFORMED)),
    Case("truncated body", "connection", Fault(FaultKind.TRUNCATED)),
    Case("200 with HTML", "invalid_response", Fault(FaultKind.HTML)),
    Case("huge body", "invalid_response", Fault(FaultKind.HUGE)),
    Case("reset connection", "connection", Fault(FaultKind.RESET)),
    Case("refused port", "connection", endpoint=_refused),
    Case(
        "error body that is not JSON",
        "http_502",
        Fault(
            FaultKind.STATUS,
            status=502,
            shape=__import__("exporter.simulator", fromlist=["BodyShape"]).BodyShape.TEXT,
        ),
    ),
]


@pytest.fixture
async def healthy_cloud(simulator: SimulatorServer) -> SimulatorServer:
    c = simulator.cloud
    c.put(Resource.DEVSERVER_IMAGE, PROJECT, IMG, devserver_body(IMG))
    for s in (SICK, WELL):
        c.put(Resource.IMAGE_SERVER, PROJECT, s, image_server_body(s, "BUILDING"))
    return simulator


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def errors(e: Exporter, label: str) -> float:
    return (
        e.registry.get_sample_value(
            "huaweicloud_image_exporter_api_errors_total",
            {"api": "image_server", "error_code": label},
        )
        or 0.0
    )


def warnings_for(caplog: pytest.LogCaptureFixture, target_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and getattr(r, "id", None) == target_id
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault_isolated_and_reported(
    healthy_cloud: SimulatorServer, caplog: pytest.LogCaptureFixture, case: Case
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    base = settings(healthy_cloud.url, [IMG], [SICK, WELL], timeout=0.5, interval=10)
    e = Exporter(base, retry_policy=POLICY)
    try:
        await e.run_cycle()
        if case.fault is not None:
            healthy_cloud.cloud.faults[(Resource.IMAGE_SERVER, PROJECT, SICK)] = case.fault
        if case.endpoint is not None:
            moved = tuple(
                replace(t, endpoint=case.endpoint(t.endpoint)) if t.key.id == SICK else t
                for t in base.targets
            )
            e.poller.reconfigure(moved, poll=PollSettings(interval=10, concurrency=8))
        before = errors(e, case.label)
        started = time.monotonic()
        snap = await e.run_cycle()
        assert time.monotonic() - started < 5, "a fault must not stall the cycle"
        out = text(e)
        states = {t.key.id: t for t in snap.targets}
        assert not states[SICK].up
        assert states[WELL].up and states[IMG].up, "one failing target hid another"
        # the failing target keeps its last known values; target_up says they are stale
        labels = {"project_id": PROJECT, "id": SICK}
        assert (
            value(out, "huaweicloud_workspace_image_server_status", status="BUILDING", **labels)
            == 1
        )
        assert (
            value(out, "huaweicloud_image_exporter_target_up", resource="image_server", **labels)
            == 0
        )
        assert errors(e, case.label) > before, f"error_code={case.label} not counted"
        lines = warnings_for(caplog, SICK)
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].getMessage().startswith("poll failed: ")
        # the same failure again is not logged again at warning level
        await e.run_cycle()
        assert len(warnings_for(caplog, SICK)) == 1
    finally:
        await e.stop()


async def test_slow_answer_is_no_fault(healthy_cloud: SimulatorServer) -> None:
    healthy_cloud.cloud.faults[(Resource.IMAGE_SERVER, PROJECT, SICK)] = Fault(
        FaultKind.SLOW, delay=0.2
    )
    e = Exporter(settings(healthy_cloud.url, [IMG], [SICK, WELL], timeout=1), retry_policy=POLICY)
    try:
        snap = await e.run_cycle()
    finally:
        await e.stop()
    assert all(t.up for t in snap.targets)


async def test_iam_down_while_aksk_targets_keep_working(healthy_cloud: SimulatorServer) -> None:
    cloud = healthy_cloud.cloud
    cloud.add_iam_user("acme", "monitor", "iam-pass-1")
    cloud.faults["iam"] = Fault(FaultKind.STATUS, status=503, error_code="IAM.0001")
    aksk = settings(healthy_cloud.url, [IMG], [WELL]).targets
    iam = settings(
        healthy_cloud.url,
        [],
        [SICK],
        credentials=IamCredentials("monitor", "iam-pass-1", "acme", healthy_cloud.url),
    ).targets
    e = Exporter(replace(settings(healthy_cloud.url), targets=aksk + iam), retry_policy=POLICY)
    try:
        snap = await e.run_cycle()
        states = {t.key.id: t for t in snap.targets}
        assert states[IMG].up and states[WELL].up
        assert not states[SICK].up and "IAM.0001" in (states[SICK].error or "")
        assert (e.registry.get_sample_value(
            "huaweicloud_image_exporter_api_errors_total", {"api": "iam_token", "error_code": "IAM.0001"}
        ) or 0) >= 1  # fmt: skip
    finally:
        await e.stop()


async def test_token_revoked_mid_run_recovers_in_the_same_cycle(
    healthy_cloud: SimulatorServer,
) -> None:
    cloud = healthy_cloud.cloud
    cloud.add_iam_user("acme", "monitor", "iam-pass-1")
    creds = IamCredentials("monitor", "iam-pass-1", "acme", healthy_cloud.url)
    e = Exporter(
        settings(healthy_cloud.url, [IMG], [SICK, WELL], credentials=creds), retry_policy=POLICY
    )
    try:
        assert all(t.up for t in (await e.run_cycle()).targets)
        cloud.revoke_tokens()
        assert all(t.up for t in (await e.run_cycle()).targets)
    finally:
        await e.stop()


async def test_dns_failure_through_the_exporter(healthy_cloud: SimulatorServer) -> None:
    from tests.harness import FailingResolver

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=FailingResolver())
    ) as session:
        s = settings("http://modelarts.nowhere.example", [IMG], [])
        e = Exporter(s, retry_policy=RetryPolicy(retries=0), session=session)
        snap = await e.run_cycle()
        await e.stop()
    assert not snap.targets[0].up
    assert "cannot resolve" in (snap.targets[0].error or "")


async def test_scheduler_keeps_running_through_failing_cycles(
    healthy_cloud: SimulatorServer,
) -> None:
    healthy_cloud.cloud.faults[(Resource.IMAGE_SERVER, PROJECT, SICK)] = Fault(FaultKind.RESET)
    e = Exporter(
        settings(healthy_cloud.url, [IMG], [SICK], interval=0.5, timeout=0.3),
        retry_policy=RetryPolicy(retries=0),
    )
    await e.start()
    try:
        stamps: set[float | None] = set()
        deadline = time.monotonic() + 10
        while len(stamps) < 3 and time.monotonic() < deadline:
            stamps.add(e.exposition.snapshot.last_poll_timestamp)
            await asyncio.sleep(0.05)
        assert len(stamps - {None}) >= 2, "the schedule stopped after a failing cycle"
    finally:
        await e.stop()


async def _unused(_: AsyncIterator[None], __: SimulatedCloud, ___: Target) -> None:
    return None
