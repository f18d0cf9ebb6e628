"""The live part of /metrics, rendered at scrape time: process, build and reload metrics.

The client's API counters (``exporter.cloud.metrics``) are registered here too by whoever
wires the exporter; everything per target comes from the snapshot instead.
"""

from __future__ import annotations

import time

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
)

from exporter import __version__


def live_registry() -> CollectorRegistry:
    """A registry with the process, platform, GC and build-info metrics."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    Gauge(
        "huaweicloud_image_exporter_build_info",
        "Build information of the exporter; the value is 1.",
        ["version"],
        registry=registry,
    ).labels(__version__).set(1)
    return registry


class ReloadMetrics:
    """``huaweicloud_image_exporter_config_last_reload_*``, as Prometheus itself reports reloads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.successful = Gauge(
            "huaweicloud_image_exporter_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or was rejected (0).",
            registry=registry,
        )
        self.success_time = Gauge(
            "huaweicloud_image_exporter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=registry,
        )

    def record(self, ok: bool) -> None:
        """Record the outcome of a (re)load."""
        self.successful.set(1 if ok else 0)
        if ok:
            self.success_time.set(time.time())
