"""Authentication: AK/SK request signing, or IAM tokens cached per project."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError
from yarl import URL

from exporter.cloud import paths, signing
from exporter.cloud.errors import ApiError, ErrorKind
from exporter.cloud.models import TokenResponseModel
from exporter.cloud.transport import Transport
from exporter.domain.credentials import AkSkCredentials, IamCredentials

log = logging.getLogger(__name__)

IAM_API = "iam_token"
TOKEN_HEADER = "X-Subject-Token"  # noqa: S105 - a header name


# The scope of an account-wide call (IAM's project list): the account, not a project.
ACCOUNT_SCOPE = ""


class Authenticator(Protocol):
    """Adds authentication to a request to a project's API, or to an account-wide API
    when ``project_id`` is ACCOUNT_SCOPE."""

    async def headers(
        self,
        method: str,
        url: URL,
        project_id: str,
        deadline: float | None,
        domain_id: str | None = None,
    ) -> dict[str, str]:
        """Headers for one attempt of a request with an empty body."""
        ...

    def invalidate(self, project_id: str, rejected: Mapping[str, str]) -> bool:
        """After a 401 for a request sent with ``rejected`` headers, forget what was cached;
        True if one retry with fresh credentials makes sense."""
        ...


def _base_headers(project_id: str, domain_id: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if project_id != ACCOUNT_SCOPE:
        headers["X-Project-Id"] = project_id
    if domain_id:
        headers["X-Domain-Id"] = domain_id
    return headers


class AkSkAuth:
    """Signs every request; temporary credentials add ``X-Security-Token``."""

    def __init__(self, credentials: AkSkCredentials) -> None:
        self._credentials = credentials

    async def headers(
        self,
        method: str,
        url: URL,
        project_id: str,
        deadline: float | None,
        domain_id: str | None = None,
    ) -> dict[str, str]:
        """Signed headers for this attempt (a fresh ``X-Sdk-Date`` every time)."""
        c = self._credentials
        base = _base_headers(project_id, domain_id)
        if c.security_token:
            base["X-Security-Token"] = c.security_token
        host = url.host_port_subcomponent or ""
        return signing.sign(
            method, host, url.raw_path, url.query.items(), base, b"", c.access_key, c.secret_key
        )

    def invalidate(self, project_id: str, rejected: Mapping[str, str]) -> bool:
        """A signature is not cached, so a 401 is final."""
        return False


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float
    expires_at: float


def _parse_expiry(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class IamTokenAuth:
    """``X-Auth-Token`` from ``POST /v3/auth/tokens``, one per project.

    A token is refreshed once three quarters of its life have passed (six hours early for
    the usual 24-hour token) and concurrent requests share one fetch. After IAM fails, no
    new attempt is made for ``failure_backoff`` seconds, because repeated failed logins lock
    an IAM user and an IAM outage should not multiply requests; meanwhile a token that has
    not expired yet keeps being used.
    """

    def __init__(
        self,
        credentials: IamCredentials,
        transport: Transport,
        *,
        failure_backoff: float = 60.0,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._transport = transport
        self.failure_backoff = failure_backoff
        self._on_token = on_token
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._failures: dict[str, tuple[float, ApiError]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def headers(
        self,
        method: str,
        url: URL,
        project_id: str,
        deadline: float | None,
        domain_id: str | None = None,
    ) -> dict[str, str]:
        """Headers carrying a valid token for ``project_id`` (a domain-scoped one for
        ACCOUNT_SCOPE), fetching one if needed."""
        token = await self._token(project_id, deadline)
        return {**_base_headers(project_id), "X-Auth-Token": token}

    def invalidate(self, project_id: str, rejected: Mapping[str, str]) -> bool:
        """Drop the rejected token (revoked or expired early) if it is still the cached one.

        Concurrent requests rejected with the same token drop it once; each still retries,
        and the retry waits for the one new token.
        """
        token = self._tokens.get(project_id)
        if token is not None and token.value == rejected.get("X-Auth-Token"):
            del self._tokens[project_id]
        return True

    async def _token(self, project_id: str, deadline: float | None) -> str:
        cached = self._usable(project_id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            cached = self._usable(project_id)
            if cached is not None:
                return cached
            failed = self._failures.get(project_id)
            if failed is not None and self._clock() < failed[0]:
                return self._fallback(project_id, failed[1])
            try:
                token = await self._fetch(project_id, deadline)
            except ApiError as exc:
                self._failures[project_id] = (self._clock() + self.failure_backoff, exc)
                return self._fallback(project_id, exc)
            self._failures.pop(project_id, None)
            self._tokens[project_id] = token
            return token.value

    def _fallback(self, project_id: str, error: ApiError) -> str:
        """While IAM fails, a token that has not yet expired is still good to use."""
        token = self._tokens.get(project_id)
        if token is not None and self._clock() < token.expires_at:
            return token.value
        raise error

    def _usable(self, project_id: str) -> str | None:
        token = self._tokens.get(project_id)
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        return None

    async def _fetch(self, project_id: str, deadline: float | None) -> _Token:
        c = self._credentials
        body = json.dumps(
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": c.username,
                                "password": c.password,
                                "domain": {"name": c.domain_name},
                            }
                        },
                    },
                    "scope": (
                        {"project": {"id": project_id}}
                        if project_id != ACCOUNT_SCOPE
                        else {"domain": {"name": c.domain_name}}
                    ),
                }
            }
        ).encode()

        async def headers() -> dict[str, str]:
            return {"Content-Type": "application/json;charset=utf8"}

        # The catalog (every service's endpoints) is large and of no use here.
        url = URL(c.endpoint + paths.IAM_TOKENS).with_query(nocatalog="true")
        resp = await self._transport.request(
            IAM_API, "POST", url, headers, body=body, deadline=deadline
        )
        if resp.error is not None:
            raise resp.error
        value = resp.headers.get(TOKEN_HEADER)
        try:
            expires_at = _parse_expiry(
                TokenResponseModel.model_validate_json(resp.body).token.expires_at
            )
        except (ValidationError, ValueError):
            expires_at = None
        if resp.status not in (200, 201) or not value or expires_at is None:
            raise ApiError(
                ErrorKind.INVALID_RESPONSE,
                f"IAM answered {resp.status} without a usable token (X-Subject-Token and "
                "token.expires_at are required)",
                status=resp.status,
                request_id=resp.request_id,
            )
        if self._on_token is not None:
            self._on_token(value)
        now = self._clock()
        log.info(
            "obtained IAM token", extra={"project_id": project_id, "request_id": resp.request_id}
        )
        return _Token(value, now + max(0.0, expires_at - now) * 0.75, expires_at)
