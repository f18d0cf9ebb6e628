"""IAM in the simulated cloud: tokens for a password, the projects and the domain an
account can see."""

from __future__ import annotations

import json
import secrets
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.simulator.faults import BodyShape, error_body, json_response
from exporter.simulator.gateway import Token, iso, unauthorized

if TYPE_CHECKING:  # the cloud serves IAM through this module
    from exporter.simulator.cloud import SimulatedCloud

IAM_KEY = "iam"
PROJECTS_KEY = "iam_projects"  # the faults key of IAM's project list
DOMAINS_KEY = "iam_domains"  # the faults key of IAM's domain list
DOMAIN_ID = "5a3f6c2b8e9d4f1a0b7c6d5e4f3a2b1c"  # the domain every simulated project is in


def routes(cloud: SimulatedCloud, app: web.Application) -> None:
    """Serve IAM's token, project and domain calls of ``cloud`` on ``app``."""
    app.router.add_post("/v3/auth/tokens", partial(_issue_token, cloud))
    app.router.add_get("/v3/auth/projects", partial(_list_projects, cloud))
    app.router.add_get("/v3/auth/domains", partial(_list_domains, cloud))


async def _list_projects(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = PROJECTS_KEY
    domain_id = request.headers.get("X-Domain-Id", "")
    cloud.domain_ids.append(domain_id)
    denied = cloud.authenticate(request, None)
    signed = "X-Auth-Token" not in request.headers
    if denied is None and cloud.require_domain_id and signed and domain_id != DOMAIN_ID:
        denied = unauthorized(
            "Incorrect IAM authentication information: the X-Domain-Id header is "
            "missing or names another domain."
        )
    if denied is not None:
        return cloud.count(api, denied)
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    body = {"links": {"self": str(request.url)}, "projects": cloud.projects}
    return cloud.count(api, json_response(200, json.dumps(body).encode()))


async def _list_domains(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    api = DOMAINS_KEY
    denied = cloud.authenticate(request, None)
    if denied is not None:
        return cloud.count(api, denied)
    if (faulted := await cloud.injected(request, api)) is not None:
        return faulted
    links = {"self": str(request.url)}
    domain = {"id": DOMAIN_ID, "name": "simulated", "enabled": True, "description": "",
              "links": links}  # fmt: skip
    return cloud.count(
        api, json_response(200, json.dumps({"domains": [domain], "links": links}).encode())
    )


async def _issue_token(cloud: SimulatedCloud, request: web.Request) -> web.StreamResponse:
    if (faulted := await cloud.injected(request, "iam_token", IAM_KEY)) is not None:
        return faulted
    try:
        data = await request.json()
        identity = data["auth"]["identity"]["password"]["user"]
        key = (identity["domain"]["name"], identity["name"])
        password = identity["password"]
        scope = data["auth"]["scope"]
        project_id = (
            scope["project"]["id"] if "project" in scope else "domain:" + scope["domain"]["name"]
        )
    except (ValueError, KeyError, TypeError):
        return cloud.count(
            "iam_token",
            json_response(400, error_body(BodyShape.NESTED, "400", "malformed request")),
        )
    known = cloud.iam_users.get(key)
    if known is None or not secrets.compare_digest(known, password):
        return cloud.count(
            "iam_token",
            json_response(
                401, error_body(BodyShape.NESTED, "401", "The username or password is wrong.")
            ),
        )
    token = secrets.token_hex(32)
    expires_at = time.time() + cloud.token_lifetime
    cloud._tokens[token] = Token(project_id, expires_at)
    answer: dict[str, Any] = {"expires_at": iso(expires_at)}
    if request.query.get("nocatalog") != "true":
        # As IAM does: every service's endpoints in every region, tens of kilobytes.
        answer["catalog"] = [
            {"type": f"service{n}", "endpoints": [{"region": f"region-{r}", "url": "x" * 64}
             for r in range(40)]}
            for n in range(60)
        ]  # fmt: skip
    resp = json_response(201, json.dumps({"token": answer}).encode())
    resp.headers["X-Subject-Token"] = token
    return cloud.count("iam_token", resp)
