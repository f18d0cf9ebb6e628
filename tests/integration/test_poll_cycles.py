"""Poll cycles against the simulated cloud: the failure semantics of the metric contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.domain.state import CloudObject, Snapshot
from exporter.domain.targets import Resource, Target
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatorServer
from tests.helpers import (
    PROJECT,
    devserver_body,
    image_id,
    image_server_body,
    server_id,
    settings,
    value,
)

IMG_A, IMG_B = image_id(1), image_id(2)
SRV_A, SRV_B = server_id(1), server_id(2)
NO_RETRY = RetryPolicy(retries=0)


def text(exporter: Exporter) -> str:
    return b"".join(exporter.exposition.body(Format.TEXT, gzip=False)).decode()


@pytest.fixture
async def populated(simulator: SimulatorServer) -> SimulatorServer:
    c = simulator.cloud
    for i in (IMG_A, IMG_B):
        c.put(Resource.DEVSERVER_IMAGE, PROJECT, i, devserver_body(i))
    for s in (SRV_A, SRV_B):
        c.put(Resource.IMAGE_SERVER, PROJECT, s, image_server_body(s, "BUILDING"))
    return simulator


@pytest.fixture
async def exporter(populated: SimulatorServer) -> AsyncIterator[Exporter]:
    e = Exporter(settings(populated.url, [IMG_A, IMG_B], [SRV_A, SRV_B]), retry_policy=NO_RETRY)
    yield e
    await e.stop()


def status_value(out: str, kind: str, oid: str, status: str) -> float | None:
    """One series of a status state set (kind: workspace_image_server or modelarts_devserver_image)."""
    return value(out, f"huaweicloud_{kind}_status", project_id=PROJECT, id=oid, status=status)


def up(out: str, resource: str, oid: str) -> float | None:
    return value(
        out, "huaweicloud_image_exporter_target_up", resource=resource, project_id=PROJECT, id=oid
    )


async def test_one_full_cycle(exporter: Exporter) -> None:
    assert not exporter.exposition.snapshot.ready
    snap = await exporter.run_cycle()
    assert snap.ready and len(snap.targets) == 4 and all(t.up for t in snap.targets)
    out = text(exporter)
    assert status_value(out, "modelarts_devserver_image", IMG_A, "ACTIVE") == 1
    assert status_value(out, "modelarts_devserver_image", IMG_A, "INACTIVE") == 0
    assert status_value(out, "workspace_image_server", SRV_A, "BUILDING") == 1
    assert (
        value(
            out,
            "huaweicloud_workspace_image_server_authorized_accounts",
            project_id=PROJECT,
            id=SRV_A,
            account_type="USER",
        )
        == 2
    )
    assert (
        value(
            out, "huaweicloud_image_exporter_targets", resource="image_server", origin="configured"
        )
        == 2
    )
    assert value(out, "huaweicloud_image_exporter_last_poll_duration_seconds") is not None
    for oid, res in ((IMG_A, "devserver_image"), (SRV_B, "image_server")):
        assert up(out, res, oid) == 1
        assert (
            value(
                out,
                "huaweicloud_image_exporter_target_exists",
                resource=res,
                project_id=PROJECT,
                id=oid,
            )
            == 1
        )


async def test_failed_poll_keeps_last_values_and_marks_down(
    exporter: Exporter, populated: SimulatorServer
) -> None:
    await exporter.run_cycle()
    populated.cloud.faults[(Resource.IMAGE_SERVER, PROJECT, SRV_A)] = Fault(
        FaultKind.STATUS, status=500
    )
    populated.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, SRV_A, "ERROR")
    await exporter.run_cycle()
    out = text(exporter)
    assert up(out, "image_server", SRV_A) == 0
    # stale-serving: the last known status stays, target_up says it is stale
    assert status_value(out, "workspace_image_server", SRV_A, "BUILDING") == 1
    # one failing target hides nothing else
    assert up(out, "image_server", SRV_B) == 1 and up(out, "devserver_image", IMG_A) == 1
    snap = exporter.exposition.snapshot
    failing = next(t for t in snap.targets if t.key.id == SRV_A)
    assert failing.error and "HTTP 500" in failing.error


async def test_404_sets_exists_0_and_drops_object_series(
    exporter: Exporter, populated: SimulatorServer
) -> None:
    await exporter.run_cycle()
    populated.cloud.delete(Resource.DEVSERVER_IMAGE, PROJECT, IMG_B)
    await exporter.run_cycle()
    out = text(exporter)
    labels = {"resource": "devserver_image", "project_id": PROJECT, "id": IMG_B}
    assert value(out, "huaweicloud_image_exporter_target_exists", **labels) == 0
    assert value(out, "huaweicloud_image_exporter_target_up", **labels) == 1
    assert f'id="{IMG_B}",project_id="{PROJECT}",status=' not in out
    assert (
        value(out, "huaweicloud_image_exporter_status_last_change_timestamp_seconds", **labels)
        is None
    )
    assert not any(
        IMG_B in line for line in out.splitlines() if line.startswith("huaweicloud_modelarts_")
    )


async def test_status_change_moves_last_change_timestamp(
    exporter: Exporter, populated: SimulatorServer
) -> None:
    labels = {"resource": "image_server", "project_id": PROJECT, "id": SRV_A}
    await exporter.run_cycle()
    first = value(
        text(exporter), "huaweicloud_image_exporter_status_last_change_timestamp_seconds", **labels
    )
    await asyncio.sleep(0.01)
    await exporter.run_cycle()
    assert (
        value(
            text(exporter),
            "huaweicloud_image_exporter_status_last_change_timestamp_seconds",
            **labels,
        )
        == first
    )
    populated.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, SRV_A, "ACTIVE")
    await exporter.run_cycle()
    after = value(
        text(exporter), "huaweicloud_image_exporter_status_last_change_timestamp_seconds", **labels
    )
    assert first is not None and after is not None and after > first


async def test_unexpected_exception_in_one_target_hides_nothing(
    exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.cloud.client import HuaweiCloudClient

    original = HuaweiCloudClient.fetch

    async def broken(
        self: HuaweiCloudClient, target: Target, deadline: float | None = None
    ) -> CloudObject | None:
        if target.key.id == IMG_A:
            raise RuntimeError("bug")
        return await original(self, target, deadline)

    monkeypatch.setattr(HuaweiCloudClient, "fetch", broken)
    snap = await exporter.run_cycle()
    states = {t.key.id: t for t in snap.targets}
    assert not states[IMG_A].up and states[IMG_A].error_label == "internal"
    assert all(states[i].up for i in (IMG_B, SRV_A, SRV_B))


async def test_scheduler_runs_first_cycle_at_once_and_publishes(populated: SimulatorServer) -> None:
    e = Exporter(
        settings(populated.url, [IMG_A], [], interval=30, timeout=1), retry_policy=NO_RETRY
    )
    try:
        await e.start()
        for _ in range(100):
            if e.exposition.snapshot.ready:
                break
            await asyncio.sleep(0.05)
        assert e.exposition.snapshot.ready
    finally:
        await e.stop()


def test_snapshot_is_immutable() -> None:
    snap = Snapshot((), {}, 60.0)
    with pytest.raises(AttributeError):
        snap.interval = 1.0  # type: ignore[misc]


async def test_concurrency_is_bounded(populated: SimulatorServer) -> None:
    cloud = populated.cloud
    cloud.latency = 0.02
    ids = [image_id(100 + n) for n in range(20)]
    for i in ids:
        cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, i, devserver_body(i))
    e = Exporter(settings(populated.url, ids, concurrency=3), retry_policy=NO_RETRY)
    try:
        snap = await e.run_cycle()
    finally:
        await e.stop()
    assert all(t.up for t in snap.targets)
    assert cloud.peak_in_flight == 3
