"""What the status page says first: what an alert would be about right now (image servers
in ERROR, builds running too long, INACTIVE images still in use, polls failing), counted,
so that a person sees it without scrolling to the tables below."""

from __future__ import annotations

from exporter.domain.jobs import LONG_BUILD
from exporter.domain.state import DEVSERVER_SWEEP, DevServerImage, ImageServer, Snapshot
from exporter.domain.targets import Resource

# The sweeps table's resources as a person names them.
RESOURCE_NAMES = {
    Resource.IMAGE_SERVER.value: "Image servers",
    Resource.DEVSERVER_IMAGE.value: "Dev-server images",
    DEVSERVER_SWEEP: "Dev servers",
}


def needs_attention(snapshot: Snapshot, now: float) -> list[str]:
    """One phrase per kind of trouble there is, with its count; empty when there is none."""
    errors = sum(
        1 for t in snapshot.targets if isinstance(t.obj, ImageServer) and t.obj.status == "ERROR"
    )
    inactive = {
        (t.key.project_id, t.key.id)
        for t in snapshot.targets
        if isinstance(t.obj, DevServerImage) and t.obj.status == "INACTIVE"
    }
    in_use = sum(
        1
        for u in snapshot.usage
        for i in u.in_use
        if i.watched and i.in_use > 0 and (u.project_id, i.image_id) in inactive
    )
    long_builds = sum(
        1
        for j in snapshot.jobs
        for job in j.started
        if job.begin is not None and now - job.begin > LONG_BUILD
    )
    failing = sum(1 for t in snapshot.targets if not t.up)
    counted = (
        (errors, "image server in ERROR", "image servers in ERROR"),
        (long_builds, "build running over 6 h", "builds running over 6 h"),
        (in_use, "INACTIVE image still in use", "INACTIVE images still in use"),
        (failing, "poll failing", "polls failing"),
    )
    return [f"{n} {one if n == 1 else many}" for n, one, many in counted if n]
