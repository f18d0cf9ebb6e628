"""The dev-server usage family: how many dev servers run each image, by server status.

Bounded by construction: server statuses are the documented ones plus "other", and the
images of a project are capped by the poller (``exporter.domain.usage.MAX_IMAGES``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import Metric

from exporter.domain.usage import RUNNING, UsageState
from exporter.exposition.families import gauge


def usage_families(usage: Sequence[UsageState], every: float) -> Iterator[Metric]:
    """``huaweicloud_modelarts_devserver_image_servers`` for every project swept at least
    once: each image its servers run (``watched`` says whether the exporter watches it),
    and each watched image with a RUNNING series even when no server runs it."""
    servers = gauge(
        "huaweicloud_modelarts_devserver_image_servers",
        "Dev servers (ModelArts Lite Servers) running a dev-server image, by server status "
        '(a documented status, else other); watched="false" for an image in use that this '
        "exporter does not watch. A watched image always has a RUNNING series, 0 when no "
        "server runs it.",
        every,
        ["project_id", "id", "server_status", "watched"],
    )
    for u in usage:
        if u.last_success is None:
            continue  # never listed: nothing to say about its servers
        pid = u.project_id
        for image in u.in_use:
            watched = "true" if image.watched else "false"
            statuses = dict(image.servers)
            if image.watched:
                statuses.setdefault(RUNNING, 0)
            for status, n in sorted(statuses.items()):
                servers.add_metric([pid, image.image_id, status, watched], float(n))
        for image_id in u.idle:
            servers.add_metric([pid, image_id, RUNNING, "true"], 0.0)
    yield servers
