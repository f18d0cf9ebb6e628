"""The image build job families: jobs in flight and since when, failures, durations, each
image server's last job.

Bounded by construction: job types and statuses are the documented ones plus "other",
error codes of the failure counter are capped by the poller, the last-job series are one
per watched image server, and the running-job series one per job while it runs (as many
as the job list's pages the poller reads, and at most MAX_RUNNING across all projects).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from exporter.domain.jobs import DURATION_BUCKETS, IN_FLIGHT_STATUSES, JOB_TYPES, JobsState
from exporter.exposition.families import gauge, polled

PROJECT = ["project_id"]
SERVER = ["project_id", "id"]


def _le(bound: float) -> str:
    """A bucket bound as prometheus_client writes it (10.0, 1800.0, ...)."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def job_families(
    jobs: Sequence[JobsState],
    every: float,
    counts_of: frozenset[str] | None = None,
    latest: bool = True,
) -> Iterator[Metric]:
    """Every job family, with one project's series after another (without the last-job
    families' series when not ``latest``: the renderer writes those a project at a time,
    see ``latest_families``).

    With shards, several may watch image servers of one project (configured by ID, each
    shard its own): each reports the last jobs of its own servers, and the project's counts
    only for the projects in ``counts_of`` (None: all), which the poller's assignment
    names, so that sums over shards stay true."""
    in_flight = gauge(
        "huaweicloud_workspace_image_jobs",
        "Image-server jobs currently WAITING or RUNNING, by job type.",
        every,
        ["project_id", "job_type", "status"],
    )
    failures = CounterMetricFamily(
        "huaweicloud_workspace_image_job_failures",
        polled(
            "Failed (or ABNORMAL) image-server sub-jobs first seen by this exporter, by job "
            "type and error code; failures already there when it first read a project are "
            "not counted.",
            every,
        ),
        labels=["project_id", "job_type", "error_code"],
    )
    last_job, last_end = latest_families((), every)
    durations = HistogramMetricFamily(
        "huaweicloud_workspace_image_job_duration_seconds",
        polled(
            "How long ended image-server sub-jobs took, begin to end, by job type and final "
            "status; each counted once, when this exporter first sees it ended.",
            every,
        ),
        labels=["project_id", "job_type", "status"],
    )
    complete = gauge(
        "huaweicloud_image_exporter_jobs_complete",
        "0 when the project has more image build jobs WAITING or RUNNING than the exporter "
        "reads (their count and start times then hold only those read); 1 otherwise.",
        every,
        PROJECT,
    )
    up = gauge(
        "huaweicloud_image_exporter_jobs_up",
        "1 if the last read of the project's image build jobs succeeded; 0 if it failed and "
        "the job series keep their last values.",
        every,
        PROJECT,
    )
    last_success = gauge(
        "huaweicloud_image_exporter_jobs_last_success_timestamp_seconds",
        "When the project's image build jobs were last read.",
        every,
        PROJECT,
    )
    for j in jobs:
        pid = j.project_id
        up.add_metric([pid], 1.0 if j.up else 0.0)
        if j.last_success is not None:
            last_success.add_metric([pid], j.last_success)
        if j.last_success is None:
            continue  # never read: nothing to say about its jobs
        if counts_of is None or pid in counts_of:
            complete.add_metric([pid], 1.0 if j.in_flight_complete else 0.0)
            counts = dict(j.in_flight)
            kinds = dict.fromkeys([*JOB_TYPES, *(kind for kind, _ in counts)])
            for kind in kinds:
                for status in IN_FLIGHT_STATUSES:
                    count = float(counts.get((kind, status), 0))
                    in_flight.add_metric([pid, kind, status], count)
            for (kind, code), n in j.failures:
                failures.add_metric([pid, kind, code], float(n))
            for (kind, status), (per_bucket, total) in j.durations:
                cumulative = [float(n) for n in itertools.accumulate(per_bucket)]
                bounds = [*(_le(b) for b in DURATION_BUCKETS), "+Inf"]
                durations.add_metric(
                    [pid, kind, status], list(zip(bounds, cumulative, strict=True)), total
                )
        if latest:
            _add_latest(last_job, last_end, j)
    yield from (in_flight, complete, failures, durations, last_job, last_end, up, last_success)


def latest_families(
    jobs: Sequence[JobsState], every: float
) -> tuple[InfoMetricFamily, GaugeMetricFamily]:
    """The latest sub-job of each image server of ``jobs``, and when it ended."""
    last_job = InfoMetricFamily(
        "huaweicloud_workspace_image_server_last_job",
        polled("The latest sub-job acting on an image server; the value is 1.", every),
        labels=SERVER,
    )
    last_end = gauge(
        "huaweicloud_workspace_image_server_last_job_end_timestamp_seconds",
        "When the latest sub-job of an image server ended.",
        every,
        SERVER,
    )
    for j in jobs:
        if j.last_success is not None:
            _add_latest(last_job, last_end, j)
    return last_job, last_end


def _add_latest(last_job: InfoMetricFamily, last_end: GaugeMetricFamily, j: JobsState) -> None:
    for sub in j.latest:
        labels = {
            "job_id": sub.job_id, "job_type": sub.job_type, "status": sub.status,
            "error_code": sub.error_code,
        }  # fmt: skip
        last_job.add_metric([j.project_id, sub.resource_id], labels)
        if sub.end is not None:
            last_end.add_metric([j.project_id, sub.resource_id], sub.end)


def running_families(
    jobs: Sequence[JobsState], every: float, counts_of: frozenset[str] | None = None
) -> Iterator[Metric]:
    """When each job now WAITING or RUNNING began, for the projects of ``jobs`` whose counts
    this exporter reports (``counts_of``, as for ``job_families``): thousands of series at
    most, rendered a few projects at a time."""
    started = gauge(
        "huaweicloud_workspace_image_job_running_start_timestamp_seconds",
        "When each image-server job now WAITING or RUNNING began (none for a job the API "
        "gives no begin time).",
        every,
        ["project_id", "job_id", "job_type", "status"],
    )
    for j in jobs:
        pid = j.project_id
        if j.last_success is None or (counts_of is not None and pid not in counts_of):
            continue
        for job in j.started:
            if job.begin is not None:
                started.add_metric([pid, job.id, job.job_type, job.status], job.begin)
    yield started
