"""The client's own counters: requests, errors and latency by API, registered by the caller.

These are labelled by API and code, never by target, so they cannot leak series when a
target goes away; per-target series come from the snapshot collector instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)

# `*_created` series would double the API metrics in the text format for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

_M = TypeVar("_M", Counter, Histogram)
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Error codes come from the cloud: a broken gateway can send a new one with every answer.
# The first this many distinct codes of an API get their own series; later ones are "other".
MAX_ERROR_CODES = 32
OTHER_ERROR_CODE = "other"


class ApiMetrics:
    """``huaweicloud_image_exporter_api_*``: one observation per HTTP attempt."""

    def __init__(self, registry: CollectorRegistry, redact: Callable[[str], str] = str) -> None:
        # An error code is a string from the cloud: a gateway may echo a secret in it.
        self._redact = redact
        self.requests = Counter(
            "huaweicloud_image_exporter_api_requests",
            "Requests sent to Huawei Cloud APIs, by API and HTTP status ('error' when no "
            "response came).",
            ["api", "code"],
            registry=registry,
        )
        self.errors = Counter(
            "huaweicloud_image_exporter_api_errors",
            "Failed requests to Huawei Cloud APIs, by Huawei error_code, or timeout, "
            "connection, invalid_response, or http_<status> when the body named no code.",
            ["api", "error_code"],
            registry=registry,
        )
        self.duration = Histogram(
            "huaweicloud_image_exporter_api_request_duration_seconds",
            "Latency of each request to a Huawei Cloud API.",
            ["api"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

        self.invalid_items = Counter(
            "huaweicloud_image_exporter_invalid_items",
            "Items of list answers that were skipped because they are not what the API "
            "documents (a field of the wrong type, an ID of the wrong shape); the rest of "
            "the answer is used.",
            ["api"],
            registry=registry,
        )
        # labels() takes a lock and builds a key on every call; the children never change.
        self._children: dict[tuple[object, ...], Counter | Histogram] = {}
        self._error_codes: dict[str, set[str]] = {}

    def _child(self, parent: _M, *labels: str) -> _M:
        key = (id(parent), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = parent.labels(*labels)
        return child  # type: ignore[return-value]

    def request(self, api: str, code: str, seconds: float) -> None:
        """Count one attempt and its latency."""
        self._child(self.requests, api, code).inc()
        self._child(self.duration, api).observe(seconds)

    def invalid(self, api: str, n: int) -> None:
        """Count ``n`` skipped items of a list answer."""
        if n:
            self._child(self.invalid_items, api).inc(n)

    def error(self, api: str, error_code: str) -> None:
        """Count one failed attempt (under "other" once the API has MAX_ERROR_CODES codes, or
        when the code holds a known secret)."""
        if self._redact(error_code) != error_code:
            error_code = OTHER_ERROR_CODE
        seen = self._error_codes.setdefault(api, set())
        if error_code not in seen:
            if len(seen) >= MAX_ERROR_CODES:
                error_code = OTHER_ERROR_CODE
            else:
                seen.add(error_code)
        self._child(self.errors, api, error_code).inc()
