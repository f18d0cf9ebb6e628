"""Workspace image build jobs: what the exporter keeps of them, per project.

A job (CREATE_SERVER, BUILD_IMAGE, ...) has sub-jobs, each acting on one resource (an image
server) and, when it fails, carrying an error code and message. The exporter keeps, per
project, how many jobs are in flight, the latest sub-job of each image server, and how
many failed sub-jobs it has seen; never one series per job for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.domain.health import Health, Healthy

JOB_TYPES = (
    "CREATE_SERVER",
    "CREATE_SERVER_IMAGE",
    "DELETE_SERVER",
    "BUILD_IMAGE",
    "GENERATE_IMAGE",
    "DELETE_IMAGE_BUILD_SERVER",
    "DELETE_IMAGE",
)
IN_FLIGHT_STATUSES = ("WAITING", "RUNNING")
SUB_JOB_STATUSES = ("WAITING", "RUNNING", "SUCCESS", "FAILED", "ABNORMAL", "ROLLBACK", "ABORTING")
FAILED_STATUSES = frozenset({"FAILED", "ABNORMAL"})
# Statuses a sub-job ends in: its duration is observed once, in the duration histogram.
ENDED_STATUSES = ("SUCCESS", *sorted(FAILED_STATUSES))
# A job WAITING or RUNNING longer than this is worth a look: the alert's default threshold
# (huaweicloud-image-exporter-rules --build-too-long), and shaded on the status page.
LONG_BUILD = 6 * 3600.0
# Ended sub-job IDs remembered per project at most (JobsState.counted): a refresh reads up
# to 1,000 sub-jobs, and what ended within the last hour is remembered; 20 refreshes' worth
# is far more than an hour holds.
MAX_COUNTED = 20_000
# Upper bounds of the duration histogram's buckets (seconds): a step of a build takes from
# seconds (a DELETE) to many hours (a large image).
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
                    14400.0, 28800.0, 86400.0)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SubJob:
    """One sub-job; absent fields are empty strings, absent times None.

    ``job_type`` and ``status`` are already bounded to the documented values and "other";
    ``error_code`` is bounded by whoever counts it."""

    id: str
    job_id: str
    job_type: str
    resource_id: str
    resource_name: str
    status: str
    error_code: str
    error_message: str
    begin: float | None
    end: float | None

    @property
    def failed(self) -> bool:
        """Whether it ended in failure."""
        return self.status in FAILED_STATUSES

    @property
    def ended(self) -> bool:
        """Whether it has finished, one way or the other."""
        return self.status in ENDED_STATUSES

    @property
    def duration(self) -> float | None:
        """Seconds from its begin to its end, when it has ended and says both."""
        if not self.ended or self.begin is None or self.end is None or self.end < self.begin:
            return None
        return self.end - self.begin

    @property
    def in_flight(self) -> bool:
        """Whether it has not finished."""
        return self.status in IN_FLIGHT_STATUSES

    @property
    def moment(self) -> float:
        """Its latest known time, for ordering (0 when it has none)."""
        return max(self.end or 0.0, self.begin or 0.0)


@dataclass(frozen=True, slots=True)
class Job:
    """A job of the job list; ``job_type`` and ``status`` bounded as a SubJob's are."""

    id: str
    job_type: str
    status: str
    begin: float | None


@dataclass(frozen=True, slots=True)
class JobsState(Healthy):
    """One project's jobs after the latest refresh."""

    project_id: str
    health: Health
    # (job_type, status) -> jobs in that state now; WAITING and RUNNING only.
    in_flight: tuple[tuple[tuple[str, str], int], ...] = ()
    # The latest sub-job of each image server the exporter watches, by server ID.
    latest: tuple[SubJob, ...] = ()
    # (job_type, error_code) -> failed sub-jobs first seen by this exporter.
    failures: tuple[tuple[tuple[str, str], int], ...] = ()
    # Ended sub-jobs already counted (ID, when they ended), while a read may still show
    # them as new: those that ended within the read horizon, or that carry no time.
    counted: tuple[tuple[str, float], ...] = ()
    # (job_type, status) -> (sub-jobs per DURATION_BUCKETS bucket and one past the last,
    # sum of their durations): the ended sub-jobs first seen by this exporter.
    durations: tuple[tuple[tuple[str, str], tuple[tuple[int, ...], float]], ...] = ()
    # Sub-jobs in flight at the last refresh: their outcome is asked for if it does not
    # show up among the recent ones.
    running: tuple[SubJob, ...] = ()
    # The jobs WAITING or RUNNING at the last refresh, the oldest first.
    started: tuple[Job, ...] = ()
    # False when the API counted more jobs in flight than the refresh read (or than the
    # exporter keeps): in_flight and started then hold only those read.
    in_flight_complete: bool = True
