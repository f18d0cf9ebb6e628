"""Jobs in flight past what the exporter reads or keeps: said so (a metric, one warning),
bounded across every project, and rendered a slice at a time."""

from __future__ import annotations

import logging

import pytest

from exporter.cloud.transport import RetryPolicy
from exporter.domain.health import Health
from exporter.domain.jobs import Job, JobsState
from exporter.domain.state import Snapshot
from exporter.domain.targets import Resource
from exporter.exposition import render
from exporter.exposition.textformat import Format
from exporter.polling import jobs as polling_jobs
from exporter.polling.jobs import MAX_JOB_PAGES, PAGE, bound_running
from exporter.runtime import Exporter
from exporter.simulator import SimulatorServer
from exporter.simulator.jobs import add_job
from tests.helpers import PROJECT, image_server_body, settings, value

START = 1_800_000_000.0
COMPLETE = "huaweicloud_image_exporter_jobs_complete"


async def test_more_jobs_in_flight_than_read_are_said_to_be_incomplete(
    simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = simulator.cloud
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-a", image_server_body("srv-a"))
    read = MAX_JOB_PAGES * PAGE
    for n in range(read + 500):
        add_job(cloud, PROJECT, "BUILD_IMAGE", "RUNNING", [(f"srv-{n}", "x")], begin=START + n)
    e = Exporter(settings(simulator.url, servers=["srv-a"]), retry_policy=RetryPolicy(retries=0),
                 clock=lambda: START + 10_000)  # fmt: skip
    try:
        caplog.set_level(logging.WARNING)
        for _ in range(2):
            await e.run_cycle()
        text = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
        assert value(text, COMPLETE, project_id=PROJECT) == 0
        assert value(text, "huaweicloud_workspace_image_jobs", project_id=PROJECT,
                     job_type="BUILD_IMAGE", status="RUNNING") == read  # fmt: skip
        said = [
            r.getMessage() for r in caplog.records if "image build jobs RUNNING" in r.getMessage()
        ]
        assert said == [
            f"the project has {read + 500} image build jobs RUNNING; the exporter "
            f"reads {read} of them (huaweicloud_image_exporter_jobs_complete 0)"
        ]
    finally:
        await e.stop()


def _running(project: str, n: int, first: float) -> JobsState:
    started = tuple(Job(f"job-{project}-{k:05d}", "BUILD_IMAGE", "RUNNING", first + k)
                    for k in range(n))  # fmt: skip
    return JobsState(project, Health(True, START), started=started)


def test_running_jobs_are_bounded_across_every_project_the_oldest_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polling_jobs, "MAX_RUNNING", 5)
    states = {
        "a": _running("a", 4, 100.0),
        "b": _running("b", 4, 102.0),
        "c": _running("c", 1, 0.0),
    }
    bounded = bound_running(states)
    kept = {pid: [j.id for j in s.started] for pid, s in bounded.items()}
    assert kept == {"a": ["job-a-00000", "job-a-00001", "job-a-00002"],
                    "b": ["job-b-00000"], "c": ["job-c-00000"]}  # fmt: skip
    assert [s.in_flight_complete for s in bounded.values()] == [False, False, True]
    assert bound_running({"c": states["c"]}) == {"c": states["c"]}


def test_running_jobs_are_rendered_a_slice_at_a_time() -> None:
    # 12 projects of 1,000 running jobs: a yield to the loop at least every 1,000 series
    # (120,000 in one block held the loop for half a second).
    def steps(per_project: int) -> int:
        jobs = tuple(_running(f"{p:02d}", per_project, START) for p in range(12))
        snapshot = Snapshot((), {}, 60.0, jobs=jobs)
        return sum(1 for _ in render._Renderer(snapshot).steps())

    assert steps(1000) - steps(0) >= 12


def test_every_table_of_the_status_page_is_capped() -> None:
    from exporter.web.landing import render_landing
    from exporter.web.tables import MAX_ROWS

    jobs = (_running("a", MAX_ROWS + 250, START),)
    page = render_landing(Snapshot((), {}, 60.0, jobs=jobs), START + 60)
    assert f"Running builds ({MAX_ROWS + 250})" in page
    assert page.count("job-a-") == MAX_ROWS and "250 more rows not shown" in page
