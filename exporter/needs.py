"""What the shipped alerts and dashboard read from /metrics, so that a metric selection that
drops it is named at start rather than found later as an empty panel or a silent alert."""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.registry import Collector

from exporter.domain.state import Snapshot
from exporter.exposition.render import render
from exporter.exposition.selection import Selection, family_of
from exporter.rules import Tuning, alert_rules

# The series each panel of deploy/grafana/huaweicloud-image-exporter.json queries (a test
# holds this equal to the file, which is not part of the installed package).
DASHBOARD_PANELS: dict[str, tuple[str, ...]] = {
    "variables job and project": (
        "huaweicloud_image_exporter_build_info", "huaweicloud_image_exporter_target_up",
    ),
    "Targets up": ("huaweicloud_image_exporter_target_up",),
    "Targets failing": ("huaweicloud_image_exporter_target_up",),
    "Objects gone (404)": ("huaweicloud_image_exporter_target_exists",),
    "Since last poll cycle": ("huaweicloud_image_exporter_last_poll_timestamp_seconds",),
    "Image servers by status": ("huaweicloud_workspace_image_server_status",),
    "Dev-server images by status": ("huaweicloud_modelarts_devserver_image_status",),
    "Image servers: current status and time in it": (
        "huaweicloud_image_exporter_status_last_change_timestamp_seconds",
        "huaweicloud_workspace_image_server_info", "huaweicloud_workspace_image_server_status",
    ),
    "Dev-server images: current status and time in it": (
        "huaweicloud_image_exporter_status_last_change_timestamp_seconds",
        "huaweicloud_modelarts_devserver_image_info",
        "huaweicloud_modelarts_devserver_image_status",
    ),
    "Time since last successful poll": (
        "huaweicloud_image_exporter_target_last_success_timestamp_seconds",
    ),
    "Poll cycle duration and interval": (
        "huaweicloud_image_exporter_last_poll_duration_seconds",
        "huaweicloud_image_exporter_poll_interval_seconds",
    ),
    "API requests per second": ("huaweicloud_image_exporter_api_requests_total",),
    "API errors per second by code": ("huaweicloud_image_exporter_api_errors_total",),
    "API latency": ("huaweicloud_image_exporter_api_request_duration_seconds_bucket",),
    "Objects found by sweeps, and API calls per cycle": (
        "huaweicloud_image_exporter_last_poll_api_calls",
        "huaweicloud_image_exporter_sweep_objects",
    ),
    "Sweeps: up, complete, list allowed": (
        "huaweicloud_image_exporter_sweep_complete",
        "huaweicloud_image_exporter_sweep_list_allowed", "huaweicloud_image_exporter_sweep_up",
    ),
    "Image build jobs in flight": ("huaweicloud_workspace_image_jobs",),
    "Failed build sub-jobs in 15 minutes, by type and error code": (
        "huaweicloud_workspace_image_job_failures_total",
    ),
    "Image servers: last build job": ("huaweicloud_workspace_image_server_last_job_info",),
    "Longest running builds": ("huaweicloud_workspace_image_job_running_start_timestamp_seconds",),
    "Build durations by type and final status": (
        "huaweicloud_workspace_image_job_duration_seconds_count",
        "huaweicloud_workspace_image_job_duration_seconds_sum",
    ),
    "Dev servers by image and status": ("huaweicloud_modelarts_devserver_image_servers",),
    "Dev-server images no server runs": (
        "huaweicloud_modelarts_devserver_image_info",
        "huaweicloud_modelarts_devserver_image_servers",
    ),
}  # fmt: skip

_SERIES = re.compile(r"\bhuaweicloud_[a-z0-9_]+")


def users() -> Iterator[tuple[str, frozenset[str]]]:
    """Each shipped alert and dashboard panel, named for a person, with the series it reads."""
    for rule in alert_rules(Tuning()):
        yield f"alert {rule['alert']}", frozenset(_SERIES.findall(rule["expr"]))
    for title, series in DASHBOARD_PANELS.items():
        yield f"dashboard panel {title!r}", frozenset(series)


def families(live: Collector) -> dict[str, str]:
    """Every family the exporter can serve, name to type: the snapshot's and ``live``'s."""
    rendered = render(Snapshot((), {}, 60.0)).sections
    return {s.name: s.kind for s in rendered} | {f.name: f.type for f in live.collect()}


def unmet(select: Selection, known: dict[str, str]) -> list[str]:
    """``<alert or panel> needs <families>`` for each shipped user of a family ``select``
    drops (``known``: the families, name to type)."""
    found = []
    for who, series in users():
        names = {family_of(s, known) for s in series}
        dropped = sorted(n for n in names if n is not None and not select.keeps(n, known[n]))
        if dropped:
            found.append(f"{who} needs {', '.join(dropped)}")
    return found


def selection_report(select: Selection, known: dict[str, str]) -> str:
    """What ``select`` leaves out of /metrics, and which shipped alerts and panels that
    breaks, for ``--check-config`` (``known``: every family, name to type)."""
    dropped = select.dropped(known.items())
    lines = [
        f"{select.describe()}: {len(dropped)} of {len(known)} metric families not served: "
        f"{', '.join(dropped) or 'none'}"
    ]
    lines += (f"warning: the shipped {need}" for need in unmet(select, known))
    return "\n".join(lines)
