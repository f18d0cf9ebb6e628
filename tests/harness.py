"""A Huawei Cloud client wired for tests: a fresh registry, fast retries, and targets of
the test image and image server."""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client import CollectorRegistry

from exporter.cloud.auth import AkSkAuth, Authenticator, IamTokenAuth
from exporter.cloud.client import HuaweiCloudClient
from exporter.cloud.keys.metrics import KeyMetrics
from exporter.cloud.keys.renewal import TemporaryKeyAuth
from exporter.cloud.keys.sources import fetcher_for
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.ratelimit import RateLimiter
from exporter.cloud.transport import RetryPolicy, Transport
from exporter.domain.credentials import AkSkCredentials, Credentials, IamCredentials
from exporter.domain.targets import Target
from tests.helpers import image_id, targets

FAST = RetryPolicy(retries=2, base=0.01, cap=0.02, throttle_min=0.01, throttle_max=0.02)
IMG = image_id(1)
SRV = "srv-000001"


class Harness:
    """A client wired to a fresh registry, and helpers to read its counters."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        policy: RetryPolicy = FAST,
        timeout: float = 2.0,
        limiter: RateLimiter | None = None,
        max_body: int = 1 << 20,
    ) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ApiMetrics(self.registry)
        self.transport = Transport(
            session,
            self.metrics,
            timeout=timeout,
            policy=policy,
            limiter=limiter,
            max_body=max_body,
        )
        self.iam: list[IamTokenAuth] = []

        self.key_metrics = KeyMetrics(self.registry)
        self.secrets: list[str] = []  # every secret a source gave

        def auth_for(credentials: Credentials) -> Authenticator:
            if isinstance(credentials, IamCredentials):
                auth = IamTokenAuth(credentials, self.transport, failure_backoff=60)
                self.iam.append(auth)
                return auth
            if isinstance(credentials, AkSkCredentials):
                return AkSkAuth(credentials)
            fetcher = fetcher_for(credentials, self.transport, self.secrets.append)
            return TemporaryKeyAuth(fetcher, self.key_metrics)

        self.client = HuaweiCloudClient(self.transport, self.metrics, auth_for)

    def requests(self, api: str, code: str) -> float:
        return (
            self.registry.get_sample_value(
                "huaweicloud_image_exporter_api_requests_total", {"api": api, "code": code}
            )
            or 0.0
        )

    def errors(self, api: str, error_code: str) -> float:
        return (
            self.registry.get_sample_value(
                "huaweicloud_image_exporter_api_errors_total",
                {"api": api, "error_code": error_code},
            )
            or 0.0
        )


def image_target(url: str, credentials: Credentials | None = None) -> Target:
    return targets(url, images=[IMG], credentials=credentials)[0]


def server_target(url: str, credentials: Credentials | None = None) -> Target:
    return targets(url, servers=[SRV], credentials=credentials)[0]


class FailingResolver(AbstractResolver):
    """Resolves nothing, as a broken DNS would (no packet leaves the machine)."""

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None
