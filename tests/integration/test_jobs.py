"""Image build jobs: what a refresh reads, what it counts, and how it survives restarts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.domain.jobs import MAX_COUNTED
from exporter.domain.sharding import Shard
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.polling.jobs import JOB_CALLS, MAX_PAGES, still_readable
from exporter.runtime import Exporter
from exporter.simulator import Fault, FaultKind, SimulatedCloud, SimulatorServer
from exporter.simulator.cloud import jobs_key
from exporter.simulator.jobs import add_job, finish_job
from tests.helpers import PROJECT, image_id, image_server_body, samples, settings, value

START = 1_800_000_000.0
FAILURES = "huaweicloud_workspace_image_job_failures_total"
LAST_JOB = "huaweicloud_workspace_image_server_last_job_info"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def failures(e: Exporter, code: str, kind: str = "BUILD_IMAGE") -> float | None:
    return value(text(e), FAILURES, project_id=PROJECT, job_type=kind, error_code=code)


def sub_job_calls(cloud: SimulatedCloud) -> list[dict[str, str]]:
    return [q for q in cloud.job_queries if "status" not in q]


@pytest.fixture
def servers(simulator: SimulatorServer) -> SimulatedCloud:
    """The simulated cloud with two image servers, srv-a and srv-b."""
    for sid in ("srv-a", "srv-b"):
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    return simulator.cloud


def make(simulator: SimulatorServer, clock: Clock, state: Path | None = None) -> Exporter:
    return Exporter(
        settings(simulator.url, servers=["srv-a", "srv-b"]),
        retry_policy=RetryPolicy(retries=0),
        clock=clock,
        storage_path=str(state) if state else None,
    )


def history(cloud: SimulatedCloud, n: int) -> None:
    for i in range(n):
        add_job(cloud, PROJECT, "CREATE_SERVER", "SUCCESS", [(f"srv-old-{i}", "old")],
                begin=START - 90_000 + i, end=START - 80_000 + i)  # fmt: skip


async def test_first_look_is_the_baseline_and_a_new_failure_counts_once(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    cloud = servers
    clock = Clock()
    add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START - 600,
            end=START - 500, error=("WKS.0400", "before the exporter looked"))  # fmt: skip
    e = make(simulator, clock)
    try:
        await e.run_cycle()
        assert failures(e, "WKS.0400") is None  # the baseline: not counted
        assert value(text(e), LAST_JOB, project_id=PROJECT, id="srv-a", job_id="job-000000",
                     job_type="BUILD_IMAGE", status="FAILED", error_code="WKS.0400") == 1.0  # fmt: skip
        clock.now += 60
        add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-b", "b")], begin=START,
                end=START + 30, error=("WKS.0500", "disk full"))  # fmt: skip
        await e.run_cycle()
        assert failures(e, "WKS.0500") == 1.0
        for _ in range(3):  # still listed as recent: never counted again
            clock.now += 60
            await e.run_cycle()
        assert failures(e, "WKS.0500") == 1.0
    finally:
        await e.stop()


async def test_paging_stops_once_a_page_is_older_than_the_last_refresh(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    cloud = servers
    history(cloud, 450)
    clock = Clock()
    e = make(simulator, clock)
    try:
        await e.run_cycle()  # the first look reads every page up to the cap
        assert len(sub_job_calls(cloud)) == 5 <= MAX_PAGES
        cloud.job_queries.clear()
        clock.now += 60
        add_job(cloud, PROJECT, "BUILD_IMAGE", "SUCCESS", [("srv-a", "a")], begin=START,
                end=START + 30)  # fmt: skip
        snap = await e.run_cycle()
        # One page holds the new job and old ones, the next only old ones: then it stops.
        assert [q["offset"] for q in sub_job_calls(cloud)] == ["0", "100"]
        # Once the new job ended over an hour before the last refresh, one page suffices.
        for minutes, offsets in ((60, ["0", "100"]), (120, ["0"])):
            cloud.job_queries.clear()
            clock.now += minutes * 60
            snap = await e.run_cycle()
            assert [q["offset"] for q in sub_job_calls(cloud)] == offsets, minutes
        assert snap.api_calls == 2 + JOB_CALLS  # two detail calls and three job calls
    finally:
        await e.stop()


async def test_oldest_first_lists_are_read_from_the_end(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    cloud = servers
    cloud.jobs_oldest_first = True
    history(cloud, 450)
    clock = Clock()
    e = make(simulator, clock)
    try:
        await e.run_cycle()
        clock.now += 60
        cloud.job_queries.clear()
        add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START,
                end=START + 30, error=("WKS.0500", "disk full"))  # fmt: skip
        await e.run_cycle()
        assert failures(e, "WKS.0500") == 1.0
        offsets = [q["offset"] for q in sub_job_calls(cloud)]
        assert offsets[:2] == ["0", "351"]  # the first page tells the order; then the end
    finally:
        await e.stop()


@pytest.mark.parametrize("oldest_first", [False, True])
async def test_short_pages_and_arrivals_mid_read_count_each_failure_once(
    simulator: SimulatorServer, servers: SimulatedCloud, oldest_first: bool
) -> None:
    cloud = servers
    cloud.jobs_oldest_first = oldest_first
    cloud.page_cap = 37  # the gateway serves 37 whatever the limit
    history(cloud, 250)
    clock = Clock()
    e = make(simulator, clock)
    arrived: list[int] = []

    def arrive(project: str, offset: int) -> None:
        # A failure lands while the sub-job pages are being read.
        if offset and not arrived and cloud.job_queries and "status" not in cloud.job_queries[-1]:
            arrived.append(offset)
            add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-b", "b")], begin=START + 5,
                    end=START + 10, error=("WKS.0600", "arrived mid-read"))  # fmt: skip

    try:
        await e.run_cycle()
        clock.now += 60
        add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START,
                end=START + 30, error=("WKS.0500", "disk full"))  # fmt: skip
        cloud.on_job_page = arrive
        for _ in range(3):
            await e.run_cycle()
            clock.now += 60
        assert arrived, "the arrival never happened"
        assert failures(e, "WKS.0500") == 1.0 and failures(e, "WKS.0600") == 1.0
    finally:
        await e.stop()


async def test_a_long_build_is_settled_by_asking_its_job(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    cloud = servers
    long = add_job(cloud, PROJECT, "BUILD_IMAGE", "RUNNING", [("srv-a", "a")],
                   begin=START - 50_000)  # fmt: skip
    history(cloud, 250)  # newer than the build's start: it sinks to the third page
    clock = Clock()
    e = make(simulator, clock)
    try:
        await e.run_cycle()
        assert value(text(e), "huaweicloud_workspace_image_jobs", project_id=PROJECT,
                     job_type="BUILD_IMAGE", status="RUNNING") == 1.0  # fmt: skip
        clock.now += 60
        finish_job(long, "FAILED", START + 30, error=("WKS.0700", "timed out after 14 h"))
        cloud.job_queries.clear()
        await e.run_cycle()
        assert {"job_id": long["id"], "limit": "100", "offset": "0"} in cloud.job_queries
        assert failures(e, "WKS.0700") == 1.0
        assert value(text(e), "huaweicloud_workspace_image_jobs", project_id=PROJECT,
                     job_type="BUILD_IMAGE", status="RUNNING") == 0.0  # fmt: skip
    finally:
        await e.stop()


@pytest.mark.parametrize("stored", [True, False], ids=["with-state-file", "without"])
async def test_a_restart_never_counts_a_failure_twice(
    simulator: SimulatorServer, servers: SimulatedCloud, tmp_path: Path, stored: bool
) -> None:
    cloud = servers
    clock = Clock()
    state = tmp_path / "state.json" if stored else None
    first = make(simulator, clock, state)
    await first.run_cycle()
    clock.now += 60
    add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START,
            end=START + 30, error=("WKS.0500", "disk full"))  # fmt: skip
    await first.run_cycle()
    assert failures(first, "WKS.0500") == 1.0
    await first.stop()
    # While it was down, another build failed.
    add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-b", "b")], begin=START + 90,
            end=START + 100, error=("WKS.0500", "disk full again"))  # fmt: skip
    clock.now += 600
    second = make(simulator, clock, state)
    try:
        await second.start(schedule=False)
        await second.run_cycle()
        # With the state file the count goes on: the failure seen before is not counted
        # again, the one during the restart is. Without it, everything is the new baseline.
        assert failures(second, "WKS.0500") == (2.0 if stored else None)
    finally:
        await second.stop()


async def test_a_failing_job_list_keeps_the_last_values_marked_down(
    simulator: SimulatorServer, servers: SimulatedCloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = servers
    clock = Clock()
    add_job(cloud, PROJECT, "DELETE_SERVER", "WAITING", [("srv-b", "b")], begin=START - 10)
    e = make(simulator, clock)
    try:
        await e.run_cycle()
        cloud.faults[jobs_key(PROJECT)] = Fault(FaultKind.STATUS, status=503)
        caplog.set_level(logging.WARNING, logger="exporter")
        for _ in range(3):
            clock.now += 60
            await e.run_cycle()
        out = text(e)
        assert value(out, "huaweicloud_image_exporter_jobs_up", project_id=PROJECT) == 0.0
        assert value(out, "huaweicloud_image_exporter_jobs_last_success_timestamp_seconds",
                     project_id=PROJECT) == START  # fmt: skip
        assert value(out, "huaweicloud_workspace_image_jobs", project_id=PROJECT,
                     job_type="DELETE_SERVER", status="WAITING") == 1.0  # fmt: skip
        warned = [r for r in caplog.records if "reading image build jobs failed" in r.getMessage()]
        assert len(warned) == 1  # once when it starts failing, not every cycle
        # The objects themselves are polled as before.
        assert value(out, "huaweicloud_image_exporter_target_up", resource="image_server",
                     project_id=PROJECT, id="srv-a") == 1.0  # fmt: skip
    finally:
        await e.stop()


async def test_error_codes_are_bounded(simulator: SimulatorServer, servers: SimulatedCloud) -> None:
    cloud = servers
    clock = Clock()
    e = make(simulator, clock)
    try:
        await e.run_cycle()
        for n in range(40):
            add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=START,
                    end=START + n, error=(f"WKS.{n:04d}", "x"))  # fmt: skip
        clock.now += 60
        await e.run_cycle()
        codes = {
            dict(labels)["error_code"] for name, labels in samples(text(e)) if name == FAILURES
        }
        assert len(codes) == 33 and "other" in codes
        assert failures(e, "other") == 8.0
    finally:
        await e.stop()


async def test_dev_server_images_alone_make_no_job_calls(simulator: SimulatorServer) -> None:
    img = image_id(1)
    simulator.cloud.put(
        Resource.DEVSERVER_IMAGE, PROJECT, img, {"image_id": img, "status": "ACTIVE"}
    )
    e = Exporter(settings(simulator.url, images=[img]), retry_policy=RetryPolicy(retries=0))
    try:
        snap = await e.run_cycle()
    finally:
        await e.stop()
    assert simulator.cloud.job_queries == [] and snap.jobs == () and snap.api_calls == 1


async def test_shards_report_each_projects_counts_once(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    """Two shards split one project's configured servers: each reports the last jobs of
    its own, and one of them the project's counts."""
    cloud = servers
    ids = [f"srv-{n}" for n in range(12)]
    for sid in ids:
        cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
        add_job(cloud, PROJECT, "CREATE_SERVER", "SUCCESS", [(sid, sid)], begin=START - 99,
                end=START - 90)  # fmt: skip
    add_job(cloud, PROJECT, "BUILD_IMAGE", "RUNNING", [("srv-0", "0")], begin=START - 10)
    outs = []
    for index in range(2):
        e = Exporter(settings(simulator.url, servers=ids), retry_policy=RetryPolicy(retries=0),
                     shard=Shard(index, 2), clock=Clock())  # fmt: skip
        try:
            await e.run_cycle()
            outs.append(text(e))
        finally:
            await e.stop()
    last_jobs = [
        dict(labels)["id"] for out in outs for name, labels in samples(out) if name == LAST_JOB
    ]
    assert sorted(last_jobs) == sorted(ids)  # every server once, from the shard watching it
    assert all(f"{LAST_JOB}{{" in out for out in outs)  # both shards read the project's jobs
    running = [
        value(out, "huaweicloud_workspace_image_jobs", project_id=PROJECT,
              job_type="BUILD_IMAGE", status="RUNNING")
        for out in outs
    ]  # fmt: skip
    assert sorted(running, key=lambda v: v is not None) == [None, 1.0]


STARTED = "huaweicloud_workspace_image_job_running_start_timestamp_seconds"


def started(e: Exporter) -> dict[tuple[str, str, str], float]:
    """(job ID, type, status) -> begin time, for every running-job series served."""
    return {
        (labels["job_id"], labels["job_type"], labels["status"]): v
        for (name, key), v in samples(text(e)).items()
        if name == STARTED and (labels := dict(key))["project_id"] == PROJECT
    }


async def test_running_jobs_are_served_with_their_begin_time_until_they_end(
    simulator: SimulatorServer, servers: SimulatedCloud, tmp_path: Path
) -> None:
    clock = Clock()
    building = add_job(servers, PROJECT, "BUILD_IMAGE", "RUNNING", [("srv-a", "a")],
                       begin=START - 7_200)  # fmt: skip
    queued = add_job(servers, PROJECT, "CREATE_SERVER", "WAITING", [("srv-b", "b")],
                     begin=START - 60)  # fmt: skip
    add_job(servers, PROJECT, "DELETE_SERVER", "SUCCESS", [("srv-b", "b")],
            begin=START - 9_000, end=START - 8_000)  # fmt: skip
    e = make(simulator, clock, tmp_path / "state.json")
    await e.run_cycle()
    await e.stop()
    assert started(e) == {
        (building["id"], "BUILD_IMAGE", "RUNNING"): START - 7_200,
        (queued["id"], "CREATE_SERVER", "WAITING"): START - 60,
    }
    # Restarted: served from the state file before any poll, then gone once it ends.
    again = make(simulator, clock, tmp_path / "state.json")
    await again.start(schedule=False)
    assert started(again) == started(e)
    finish_job(building, "SUCCESS", START + 30)
    clock.now += 60
    await again.run_cycle()
    await again.stop()
    assert [t for _, t, _ in started(again)] == ["CREATE_SERVER"]


DURATION = "huaweicloud_workspace_image_job_duration_seconds"


def durations(e: Exporter, kind: str, status: str) -> tuple[float | None, float | None]:
    """(count, sum) of the duration histogram for one job type and status."""
    out = text(e)
    labels = {"project_id": PROJECT, "job_type": kind, "status": status}
    return value(out, f"{DURATION}_count", **labels), value(out, f"{DURATION}_sum", **labels)


async def test_each_ended_sub_job_is_timed_once_across_restarts(
    simulator: SimulatorServer, servers: SimulatedCloud, tmp_path: Path
) -> None:
    clock, state = Clock(), tmp_path / "state.json"
    add_job(
        servers,
        PROJECT,
        "BUILD_IMAGE",
        "SUCCESS",
        [("srv-a", "a")],
        begin=START - 900,
        end=START - 600,
    )  # fmt: skip  (before the first look)
    first = make(simulator, clock, state)
    await first.run_cycle()
    assert durations(first, "BUILD_IMAGE", "SUCCESS") == (None, None)  # the baseline
    add_job(servers, PROJECT, "BUILD_IMAGE", "SUCCESS", [("srv-a", "a"), ("srv-b", "b")],
            begin=START, end=START + 40)  # fmt: skip
    clock.now += 60
    await first.run_cycle()
    clock.now += 60
    await first.run_cycle()  # read again: no sub-job timed twice
    await first.stop()
    assert durations(first, "BUILD_IMAGE", "SUCCESS") == (2.0, 80.0)

    # While it is down, a build fails after 2 hours; restarted, it is timed once, and
    # nothing timed before is timed again.
    add_job(servers, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-b", "b")],
            begin=START - 7_000, end=START + 200, error=("WKS.0500", "x"))  # fmt: skip
    clock.now += 300
    second = make(simulator, clock, state)
    await second.start(schedule=False)
    assert durations(second, "BUILD_IMAGE", "SUCCESS") == (2.0, 80.0)  # served as kept
    await second.run_cycle()
    await second.run_cycle()
    await second.stop()
    assert durations(second, "BUILD_IMAGE", "SUCCESS") == (2.0, 80.0)
    assert durations(second, "BUILD_IMAGE", "FAILED") == (1.0, 7_200.0)
    bucket = value(text(second), f"{DURATION}_bucket", project_id=PROJECT,
                   job_type="BUILD_IMAGE", status="FAILED", le="3600.0")  # fmt: skip
    assert bucket == 0.0  # two hours: past the 1-hour bucket


async def test_sub_jobs_said_to_end_far_in_the_future_are_neither_counted_nor_remembered(
    simulator: SimulatorServer, servers: SimulatedCloud
) -> None:
    # An API that says its sub-jobs end in 2099 made the counted IDs grow by every read's
    # worth (30 MB of state file in 60 s): such a sub-job is believed no more than as a
    # latest job (FUTURE_SLACK), and a genuine one a day ahead is still counted.
    clock = Clock()
    far, soon = 4_070_908_800.0, START + 3600  # 2099, and an hour ahead
    e = make(simulator, clock)
    try:
        await e.run_cycle()  # the baseline
        for cycle in range(3):
            clock.now += 60
            for n in range(50):
                add_job(servers, PROJECT, "BUILD_IMAGE", "FAILED", [(f"srv-x{cycle}-{n}", "x")],
                        begin=far - 60, end=far, error=("WKS.9999", "from the future"))  # fmt: skip
            await e.run_cycle()
        [jobs] = e.exposition.snapshot.jobs
        assert failures(e, "WKS.9999") is None and len(jobs.counted) == 0
        add_job(servers, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-a", "a")], begin=soon - 60,
                end=soon, error=("WKS.0500", "disk full"))  # fmt: skip
        clock.now += 60
        await e.run_cycle()
        assert failures(e, "WKS.0500") == 1.0
        [jobs] = e.exposition.snapshot.jobs
        assert len(jobs.counted) == 1
    finally:
        await e.stop()


def test_the_counted_sub_jobs_of_a_project_are_bounded() -> None:
    many = {f"sub-{n:06d}": START + n for n in range(MAX_COUNTED + 500)}
    kept = still_readable(many, [], START + 10)
    assert len(kept) == MAX_COUNTED and kept[0] == ("sub-000500", START + 500)
