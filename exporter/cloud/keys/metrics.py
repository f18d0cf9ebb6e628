"""``huaweicloud_image_exporter_credentials_*``: when each source's key expires, and how
often fetching one failed. Labelled by source only: a handful of series at most."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class KeyMetrics:
    """The temporary-key families, registered by the caller."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._expiry = Gauge(
            "huaweicloud_image_exporter_credentials_expiry_timestamp_seconds",
            "When the temporary access key in use expires, by credential source.",
            ["source"],
            registry=registry,
        )
        self._failures = Counter(
            "huaweicloud_image_exporter_credentials_refresh_failures",
            "Failed attempts to fetch a temporary access key, by credential source.",
            ["source"],
            registry=registry,
        )

    def expires(self, source: str, at: float) -> None:
        """A key of ``source`` was fetched that expires ``at``."""
        self._expiry.labels(source).set(at)
        self._failures.labels(source)  # the counter is there from the first key on

    def failed(self, source: str) -> None:
        """Fetching a key of ``source`` failed once."""
        self._failures.labels(source).inc()
