"""Where the simulated cloud hands out temporary keys: the instance metadata service, CCE
pod identity, STS (OIDC federation, and who the caller is) and IAM's ID-token federation.

Each service answers a fault injected under its API name (``metadata_key``,
``pod_identity``, ``sts_oidc``, ``iam_securitytokens``, …) as the other APIs do. Every key
lasts ``KeyService.lifetime`` seconds on the cloud's clock and is then refused by
the gateway as Huawei's is ("signature expired"); each source answers in one of the shapes
the official SDK reads, so that the exporter reads them all. Routes live at the paths the
real services use; the metadata service and pod identity are on this server too (a test
points the exporter's ``metadata_endpoint`` and pod identity URI here).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.simulator.faults import BodyShape, error_body, json_response
from exporter.simulator.iam import DOMAIN_ID

if TYPE_CHECKING:  # the cloud serves these through this module
    from exporter.simulator.cloud import SimulatedCloud

POD_IDENTITY_PATH = "/v1/pod-identity/credentials"
CALLER_KEY = "sts_caller_identity"  # the faults key of STS's caller identity
NO_AGENCY = "Please configure Cloud Service Agency first"


@dataclass
class KeyService:
    """What the key services know, and what they issued."""

    lifetime: float = 3600.0
    metadata_tokens: bool = True  # False: the token call answers 404 (no token service)
    agency: bool = True  # False: the instance has no agency
    pod_token: str = ""  # the projected token pod identity accepts ("" refuses all)
    oidc_tokens: set[str] = field(default_factory=set)  # ID tokens STS accepts
    idp_tokens: set[str] = field(default_factory=set)  # ID tokens IAM federation accepts
    issued: list[tuple[str, str, float]] = field(default_factory=list)  # (source, AK, expiry)
    _session_tokens: set[str] = field(default_factory=set)
    _unscoped: set[str] = field(default_factory=set)


def routes(cloud: SimulatedCloud, app: web.Application) -> None:
    """Serve the key services of ``cloud`` on ``app``."""
    app.router.add_put("/meta-data/latest/api/token", partial(_metadata_token, cloud))
    app.router.add_get("/openstack/latest/securitykey", partial(_metadata_key, cloud))
    app.router.add_post(POD_IDENTITY_PATH, partial(_pod_identity, cloud))
    app.router.add_post("/v5/agencies/assume-with-oidc", partial(_oidc, cloud))
    app.router.add_get("/v5/caller-identity", partial(_caller, cloud))
    app.router.add_post("/v3.0/OS-AUTH/id-token/tokens", partial(_id_token, cloud))
    app.router.add_post("/v3.0/OS-CREDENTIAL/securitytokens", partial(_federated_key, cloud))


def _expiry(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def issue(cloud: SimulatedCloud, source: str) -> tuple[str, str, str, str]:
    """A new temporary key the gateway accepts until it expires: (AK, SK, token, expiry)."""
    ak = "TMP" + secrets.token_hex(8).upper()
    sk, token = secrets.token_hex(20), secrets.token_urlsafe(48)
    expires = cloud.clock() + cloud.keys.lifetime
    cloud.add_access_key(ak, sk, token)
    cloud.access_keys[ak].expires_at = expires
    cloud.keys.issued.append((source, ak, expires))
    return ak, sk, token, _expiry(expires)


def _answer(status: int, body: dict[str, Any], api: str, cloud: SimulatedCloud) -> web.Response:
    resp = cloud.count(api, json_response(status, json.dumps(body).encode()))
    assert isinstance(resp, web.Response)
    return resp


def _refused(cloud: SimulatedCloud, api: str, status: int, message: str) -> web.StreamResponse:
    return cloud.count(
        api, json_response(status, error_body(BodyShape.STANDARD, "IAM.0001", message))
    )


async def _metadata_token(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "metadata_token"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    if not cloud.keys.metadata_tokens:
        return cloud.count(api, web.Response(status=404, text="not found"))
    if not request.headers.get("X-Metadata-Token-Ttl-Seconds", "").isdigit():
        return cloud.count(api, web.Response(status=400, text="X-Metadata-Token-Ttl-Seconds"))
    token = secrets.token_hex(16)
    cloud.keys._session_tokens.add(token)
    return cloud.count(api, web.Response(text=token))


async def _metadata_key(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "metadata_key"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    service = cloud.keys
    if service.metadata_tokens and request.headers.get("X-Metadata-Token") not in (
        service._session_tokens
    ):
        return cloud.count(api, web.Response(status=401, text="invalid metadata token"))
    if not service.agency:
        return cloud.count(api, web.Response(status=401, text=NO_AGENCY))
    ak, sk, token, expires = issue(cloud, "metadata")
    key = {"access": ak, "secret": sk, "securitytoken": token, "expires_at": expires}
    return _answer(200, {"credential": key}, api, cloud)


async def _pod_identity(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "pod_identity"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    given = request.headers.get("Authorization", "")
    if not cloud.keys.pod_token or not secrets.compare_digest(given, cloud.keys.pod_token):
        return _refused(cloud, api, 401, "the projected token is not valid")
    if await request.read() != b"{}":
        return _refused(cloud, api, 400, "the body must be {}")
    ak, sk, token, expires = issue(cloud, "pod_identity")
    key = {"accessKeyId": ak, "secretAccessKey": sk, "securityToken": token, "expiration": expires}
    return _answer(200, {"credentials": key}, api, cloud)


async def _oidc(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "sts_oidc"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    try:
        body = json.loads(await request.read())
        fields = [body[k] for k in ("provider_urn", "agency_urn", "agency_session_name",
                                    "id_token", "duration_seconds")]  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return _refused(cloud, api, 400, "malformed request")
    if fields[3] not in cloud.keys.oidc_tokens:
        return _refused(cloud, api, 403, "the ID token is not valid")
    ak, sk, token, expires = issue(cloud, "oidc")
    key = {"access_key_id": ak, "secret_access_key": sk, "security_token": token,
           "expiration": expires}  # fmt: skip
    return _answer(201, {"credentials": key}, api, cloud)


async def _caller(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = CALLER_KEY
    denied = cloud.authenticate(request, None)
    if denied is not None:
        return cloud.count(api, denied)
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    body = {"account_id": DOMAIN_ID, "principal_id": "p1", "principal_urn": "sts::p1"}
    return _answer(200, body, api, cloud)


async def _id_token(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "iam_id_token"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    try:
        given = json.loads(await request.read())["auth"]["id_token"]["id"]
    except (ValueError, KeyError, TypeError):
        return _refused(cloud, api, 400, "malformed request")
    if not request.headers.get("X-Idp-Id") or given not in cloud.keys.idp_tokens:
        return _refused(cloud, api, 401, "the ID token is not valid")
    token = secrets.token_hex(24)
    cloud.keys._unscoped.add(token)
    resp = _answer(201, {"token": {"methods": ["mapped"]}}, api, cloud)
    resp.headers["X-Subject-Token"] = token
    return resp


async def _federated_key(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = "iam_securitytokens"
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    try:
        token = json.loads(await request.read())["auth"]["identity"]["token"]["id"]
    except (ValueError, KeyError, TypeError):
        return _refused(cloud, api, 400, "malformed request")
    if token not in cloud.keys._unscoped:
        return _refused(cloud, api, 401, "the token is not valid")
    ak, sk, security_token, expires = issue(cloud, "id_token")
    key = {"access": ak, "secret": sk, "securitytoken": security_token, "expires_at": expires}
    return _answer(201, {"credential": key}, api, cloud)
