"""HTTP to Huawei Cloud: one pooled session, timeouts, a body cap, retries with backoff.

Retries cover 429, 5xx, timeouts and connection errors, with exponential backoff and full
jitter (Retry-After honoured), and never run past the caller's deadline. 401 and 403 are
never retried here: five bad signatures in a row lock the key pair for five minutes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from exporter import __version__
from exporter.cloud.errors import ApiError, ErrorKind, http_error
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.network import Network
from exporter.cloud.ratelimit import RateLimiter
from exporter.cloud.sanitize import clean, clean_optional

USER_AGENT = f"huaweicloud-image-exporter/{__version__}"
MAX_REQUEST_ID = 128

DEFAULT_MAX_BODY = 1 << 20  # detail answers are a few KiB; anything near this is not one


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed attempts are retried."""

    retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    # Huawei advises waiting 2 to 5 seconds after a throttling answer without Retry-After.
    throttle_min: float = 2.0
    throttle_max: float = 5.0

    def delay(self, attempt: int, error: ApiError) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if error.retry_after is not None:
            return error.retry_after
        if error.status == 429:
            return random.uniform(self.throttle_min, self.throttle_max)  # noqa: S311
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer; ``error`` is set for 4xx and 5xx other than a plain 404."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    request_id: str | None
    error: ApiError | None


def retryable(error: ApiError) -> bool:
    """Whether another attempt might succeed: throttling, server errors, network failures."""
    if error.kind in (ErrorKind.TIMEOUT, ErrorKind.CONNECTION):
        return True
    return error.status is not None and (error.status == 429 or error.status >= 500)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


HeaderFactory = Callable[[], Awaitable[Mapping[str, str]]]


class Transport:
    """Sends requests and reads answers, counting every attempt in ApiMetrics."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        metrics: ApiMetrics,
        *,
        timeout: float,
        policy: RetryPolicy,
        limiter: RateLimiter | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        network: Network | None = None,
    ) -> None:
        self._session = session
        self._network = network or Network()
        self._ssl = self._network.ssl_context()
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_s = timeout
        self._policy = policy
        self._limiter = limiter
        self._max_body = max_body

    def configure(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        rate: float | None,
        network: Network | None = None,
    ) -> None:
        """Apply new settings (after a reload); an unchanged rate keeps the limiter's slots."""
        if network is not None and network != self._network:
            self._network, self._ssl = network, network.ssl_context()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_s = timeout
        self._policy = policy
        if rate is None:
            self._limiter = None
        elif self._limiter is None or self._limiter.rate != rate:
            self._limiter = RateLimiter(rate)

    async def request(
        self,
        api: str,
        method: str,
        url: URL,
        headers: HeaderFactory,
        *,
        body: bytes = b"",
        deadline: float | None = None,
        max_body: int | None = None,
    ) -> Response:
        """Send with retries; return the final answer, or raise ApiError when none came.

        ``headers`` is awaited before each attempt so a signature carries a fresh date.
        ``deadline`` (``time.monotonic()``) stops retries that could not finish before it.
        """
        attempt = 0
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                # The cycle's time is up: no new call starts, so one slow project cannot keep
                # a cycle (and readiness) waiting page after page.
                raise ApiError(ErrorKind.TIMEOUT, "the poll cycle's time ran out before this call")
            try:
                response = await self._once(
                    api, method, url, await headers(), body, max_body or self._max_body
                )
            except ApiError as exc:
                delay = self._retry_delay(attempt, exc, deadline)
                if delay is None:
                    raise
            else:
                if response.error is None:
                    return response
                delay = self._retry_delay(attempt, response.error, deadline)
                if delay is None:
                    return response
            attempt += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int, error: ApiError, deadline: float | None) -> float | None:
        """How long to wait before retrying, or None when this failure is final."""
        if attempt >= self._policy.retries or not retryable(error):
            return None
        delay = self._policy.delay(attempt, error)
        if deadline is not None and time.monotonic() + delay + self._timeout_s > deadline:
            return None
        return delay

    async def _once(
        self,
        api: str,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes,
        max_body: int,
    ) -> Response:
        if self._limiter is not None:
            await self._limiter.acquire()
        start = time.perf_counter()
        code = "error"
        try:
            # Redirects are not followed: they would carry signed headers or a token elsewhere.
            async with self._session.request(
                method,
                url,
                headers={"User-Agent": USER_AGENT, **headers},
                data=body or None,
                timeout=self._timeout,
                allow_redirects=False,
                proxy=self._network.proxy_for(url),
                ssl=self._ssl,
                # No Content-Type the caller did not set (aiohttp adds one to an empty PUT,
                # which the SDK's requests never sends).
                skip_auto_headers=("Content-Type",),
            ) as resp:
                code = str(resp.status)
                data = await self._read(resp, max_body)
                request_id = clean_optional(resp.headers.get("X-Request-Id"), MAX_REQUEST_ID)
                error = None
                if resp.status >= 400:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    error = http_error(resp.status, data, request_id, retry_after)
                    if resp.status == 404 and not error.not_offered:
                        error = None  # the object does not exist: an answer, not a failure
                elif resp.status >= 300:
                    # Never followed (it would carry signed headers elsewhere), never an answer.
                    error = ApiError(
                        ErrorKind.INVALID_RESPONSE,
                        f"unexpected redirect to {clean(resp.headers.get('Location', '?'))}",
                        status=resp.status,
                        request_id=request_id,
                    )
                if error is not None:
                    self._metrics.error(api, error.label)
                return Response(resp.status, resp.headers, data, request_id, error)
        except ApiError as exc:
            self._metrics.error(api, exc.label)
            raise
        except TimeoutError:
            self._metrics.error(api, ErrorKind.TIMEOUT.value)
            raise ApiError(
                ErrorKind.TIMEOUT, f"no complete answer within {self._timeout_s:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            self._metrics.error(api, ErrorKind.CONNECTION.value)
            raise ApiError(ErrorKind.CONNECTION, _describe(exc)) from None
        finally:
            self._metrics.request(api, code, time.perf_counter() - start)

    async def _read(self, resp: aiohttp.ClientResponse, max_body: int) -> bytes:
        """The body, decompressed, up to the cap; Content-Length is not trusted, since a
        small gzip body can inflate a thousandfold."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > max_body:
                raise self._too_big(resp, max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, resp: aiohttp.ClientResponse, max_body: int) -> ApiError:
        return ApiError(
            ErrorKind.INVALID_RESPONSE,
            f"response body larger than {max_body} bytes; not read",
            status=resp.status,
            request_id=clean_optional(resp.headers.get("X-Request-Id"), MAX_REQUEST_ID),
        )


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"TLS: cannot verify the certificate of {exc.host}:{exc.port} "
            f"({getattr(exc.certificate_error, 'verify_message', exc.certificate_error)}); "
            "if a private CA signed it, set http_client.tls_config.ca_file to that CA's "
            "certificate"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot connect to the proxy {exc.host}:{exc.port}: {_os(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the connection: HTTP {exc.status} {exc.message}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host}: {_os(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "connection broke while reading the response body"
    return f"{type(exc).__name__}: {exc}"


def _os(error: OSError) -> str:
    return error.strerror or str(error)
