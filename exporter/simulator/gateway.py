"""The simulated API gateway's authentication: IAM tokens, and AK/SK signatures checked
as the real gateway checks them (clock skew, security tokens, a lockout after five bad
signatures in a row), answering 401 APIGW.0301 as it does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from exporter.cloud import signing
from exporter.simulator.faults import BodyShape, error_body, json_response

MAX_CLOCK_SKEW = 15 * 60
LOCKOUT_AFTER = 5
LOCKOUT_SECONDS = 300.0


@dataclass
class AccessKey:
    """A key pair the gateway knows; a temporary one requires its security token."""

    secret_key: str
    security_token: str | None = None
    failures: int = 0
    locked_until: float = 0.0
    expires_at: float | None = None  # a temporary key's expiry (on the cloud's clock)
    expired_uses: int = 0  # requests signed with it after it expired


@dataclass
class Token:
    """An IAM token the gateway issued: its scope and when it expires."""

    project_id: str
    expires_at: float


def authenticate(
    request: web.Request,
    project_id: str | None,
    tokens: dict[str, Token],
    access_keys: dict[str, AccessKey],
    clock: Callable[[], float] = time.time,
) -> web.Response | None:
    """None when the request may pass; ``project_id`` None for an account-wide API,
    which takes a domain-scoped token. ``clock`` tells when a temporary key expired."""
    token = request.headers.get("X-Auth-Token")
    if token is not None:
        issued = tokens.get(token)
        if issued is None or issued.expires_at <= time.time():
            return unauthorized("The token is invalid or has expired.")
        scoped_to_domain = issued.project_id.startswith("domain:")
        if project_id is None and not scoped_to_domain:
            return unauthorized("The token must be scoped to the domain.")
        if project_id is not None and issued.project_id != project_id:
            return unauthorized("The token is scoped to another project.")
        return None
    header = request.headers.get("Authorization", "")
    auth = signing.parse_authorization(header)
    if auth is None:
        return unauthorized("Missing or malformed authentication information.")
    key = access_keys.get(auth.access_key)
    if key is None:
        return unauthorized("The access key does not exist.")
    now = time.time()
    if key.locked_until > now:
        return unauthorized("Too many signature failures; the key pair is locked.")
    date = signing.parse_sdk_date(request.headers.get(signing.DATE_HEADER, ""))
    if date is None or abs(date.timestamp() - now) > MAX_CLOCK_SKEW:
        return unauthorized("X-Sdk-Date is missing or more than 15 minutes off.")
    if key.security_token is not None and (
        request.headers.get("X-Security-Token") != key.security_token
        or "x-security-token" not in auth.signed_headers
    ):
        return unauthorized("Temporary credentials need a valid, signed X-Security-Token.")
    ok = signing.verify(
        auth,
        key.secret_key,
        request.method,
        request.raw_path.split("?", 1)[0],
        request.query.items(),
        request.headers,
        b"",
    )
    expired = key.expires_at is not None and key.expires_at <= clock()
    if not ok or expired:
        key.failures += 1
        key.expired_uses += expired
        if key.failures >= LOCKOUT_AFTER:
            key.locked_until = now + LOCKOUT_SECONDS
        why = (
            "calc ak sk signature fail:signature expired"
            if expired
            else "verify aksk signature fail"
        )
        return unauthorized(f"Incorrect IAM authentication information: {why}.")
    key.failures = 0
    return None


async def unknown_route(request: web.Request) -> web.Response:
    """As the real gateway answers a path it does not know: JSON, APIGW.0101."""
    return json_response(
        404, error_body(BodyShape.STANDARD, "APIGW.0101", "The API does not exist.")
    )


def unauthorized(message: str) -> web.Response:
    return json_response(401, error_body(BodyShape.STANDARD, "APIGW.0301", message))


def iso(ts: float) -> str:
    """A time as the Workspace API writes it: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
