"""Image build jobs in the simulated cloud, shaped as the Workspace job lists return them."""

from __future__ import annotations

from typing import Any

from exporter.simulator.cloud import SimulatedCloud
from exporter.simulator.gateway import iso


def add_job(
    cloud: SimulatedCloud,
    project_id: str,
    job_type: str,
    status: str,
    servers: list[tuple[str, str]],
    *,
    begin: float,
    end: float | None = None,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A job with one sub-job per image server (ID, name), all in ``status``; ``error`` is
    the failed sub-jobs' (code, message). The job is listed first, as the newest."""
    # IDs from a counter, not random: golden files show them.
    job_id = f"job-{sum(len(jobs) for jobs in cloud.jobs.values()):06d}"
    times = {"begin_time": iso(begin), "end_time": iso(end) if end is not None else None}
    sub_jobs = [
        {
            "id": f"{job_id}-{n}", "job_id": job_id, "job_type": job_type,
            "project_id": project_id, "status": status,
            "job_resource_info": {"resource_id": sid, "resource_name": name},
            "job_execute_info": (
                {"error_code": error[0], "error_message": error[1]} if error else None
            ),
            **times,
        }
        for n, (sid, name) in enumerate(servers)
    ]  # fmt: skip
    job = {"id": job_id, "job_type": job_type, "status": status,
           "sub_jobs_total": len(sub_jobs), "sub_jobs": sub_jobs, **times}  # fmt: skip
    cloud.jobs.setdefault(project_id, []).insert(0, job)
    return job


def finish_job(
    job: dict[str, Any], status: str, end: float, error: tuple[str, str] | None = None
) -> None:
    """End a job and its sub-jobs in ``status``."""
    for part in (job, *job["sub_jobs"]):
        part["status"], part["end_time"] = status, iso(end)
    for sub in job["sub_jobs"]:
        if error is not None:
            sub["job_execute_info"] = {"error_code": error[0], "error_message": error[1]}
