"""A fake Huawei Cloud: detail and list APIs, build jobs and IAM, behind a gateway that checks
signatures (``gateway``) and misbehaves on request (``faults``). The demo, the tests and the
benchmarks all run against it, so they exercise the client as a real cloud would."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.domain.targets import Resource
from exporter.simulator import devservers, iam, keys
from exporter.simulator.faults import (
    BodyShape,
    Fault,
    FaultKind,
    error_body,
    json_response,
    misbehave,
)
from exporter.simulator.gateway import AccessKey, Token, authenticate, iso, unknown_route
from exporter.simulator.iam import DOMAIN_ID
from exporter.simulator.keys import KeyService

ObjectKey = tuple[Resource, str, str]
MAX_LIST_LIMIT = 100  # the image-server list's largest page


def jobs_key(project_id: str) -> str:
    """The ``faults`` key of both job lists of a project."""
    return f"jobs:{project_id}"


def dev_servers_key(project_id: str) -> str:
    """The ``faults`` key of every page of a project's dev-server list."""
    return f"devservers:{project_id}"


def list_key(resource: Resource, project_id: str, offset: int | None = None) -> str:
    """The ``faults`` key of a list call: every page of it, or the page at ``offset``."""
    return f"list:{resource.value}:{project_id}" + ("" if offset is None else f":{offset}")


@dataclass
class SimulatedCloud:
    """State of the fake cloud; ``app()`` serves it."""

    latency: float = 0.0
    token_lifetime: float = 24 * 3600.0
    seed: int = 0
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    iam_users: dict[tuple[str, str], str] = field(default_factory=dict)
    objects: dict[ObjectKey, dict[str, Any] | None] = field(default_factory=dict)
    faults: dict[ObjectKey | str, Fault] = field(default_factory=dict)
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)  # requests by path, every API
    # IAM's project list, as GET /v3/auth/projects answers it.
    projects: list[dict[str, Any]] = field(default_factory=list)
    domain_ids: list[str] = field(default_factory=list)  # X-Domain-Id of each project list call
    # As IAM documents for AK/SK-signed calls to a global service: refuse a project list
    # without the account's X-Domain-Id.
    require_domain_id: bool = False
    # A gateway that serves at most this many items a page, whatever ``limit`` asked for,
    # on every offset-paged list (image servers, jobs, sub-jobs).
    page_cap: int | None = None
    on_request: Callable[[], None] | None = None
    # Called before each list page is answered (resource, project, offset): tests create
    # and delete objects mid-sweep with it.
    on_list_page: Callable[[Resource, str, int], None] | None = None
    # Image build jobs by project, newest first, as the Workspace API lists them; each job
    # carries its "sub_jobs" (see exporter.simulator.jobs).
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jobs_oldest_first: bool = False  # list jobs the other way round (the API does not say)
    # Called before each job or sub-job list page is answered (project, offset): tests add
    # jobs while the lists are read with it.
    on_job_page: Callable[[str, int], None] | None = None
    job_queries: list[dict[str, str]] = field(default_factory=list)  # of every job list call
    # The dev-server image list returns at most this many (and says how many there are).
    devserver_list_cap: int | None = None
    # Dev servers by project, in list order (see exporter.simulator.devservers), and a
    # hook called before each page of them is answered (project, page number from 1).
    dev_servers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    on_dev_server_page: Callable[[str, int], None] | None = None
    devserver_offset: str = "item"  # how the dev-server lists read offset: "item" or "page"
    devserver_all_page: int | None = None  # every user's list, paged by default
    in_flight: int = 0
    peak_in_flight: int = 0
    # The cloud's clock (temporary keys expire on it), and the keyless sources it serves
    # (see exporter.simulator.keys).
    clock: Callable[[], float] = time.time
    keys: KeyService = field(default_factory=KeyService)
    _tokens: dict[str, Token] = field(default_factory=dict)
    _encoded: dict[ObjectKey, bytes] = field(default_factory=dict)  # bodies as sent
    _changes: int = 0
    _index: tuple[tuple[int, int], dict[tuple[Resource, str], list[dict[str, Any]]]] = field(
        default=((-1, -1), {})
    )
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - fault dice, not security

    # --- set-up -----------------------------------------------------------------------

    def add_access_key(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        """Let requests signed with this key pair in."""
        self.access_keys[access_key] = AccessKey(secret_key, token)

    def add_iam_user(self, domain: str, username: str, password: str) -> None:
        """Let this identity obtain tokens."""
        self.iam_users[(domain, username)] = password

    def add_project(
        self, project_id: str, name: str, *, enabled: bool = True, is_domain: bool = False
    ) -> None:
        """A project the account's credentials can see."""
        self.projects.append({
            "id": project_id, "name": name, "enabled": enabled, "is_domain": is_domain,
            "domain_id": DOMAIN_ID, "parent_id": DOMAIN_ID, "description": "",
            "links": {"self": ""},
        })  # fmt: skip

    def remove_project(self, project_id: str) -> None:
        """The project is gone from the account."""
        self.projects = [p for p in self.projects if p["id"] != project_id]

    def put(
        self, resource: Resource, project_id: str, object_id: str, body: dict[str, Any]
    ) -> None:
        """Create or replace an object."""
        self.objects[(resource, project_id, object_id)] = body
        self._encoded.pop((resource, project_id, object_id), None)
        self._changes += 1

    def delete(self, resource: Resource, project_id: str, object_id: str) -> None:
        """Remove an object; the API answers 404 for it from now on."""
        self.objects.pop((resource, project_id, object_id), None)
        self._encoded.pop((resource, project_id, object_id), None)
        self._changes += 1

    def set_status(self, resource: Resource, project_id: str, object_id: str, status: str) -> None:
        """Change an object's status (and update_time, as the cloud does)."""
        body = self.objects.get((resource, project_id, object_id))
        self._encoded.pop((resource, project_id, object_id), None)
        if body is not None:
            body["status"] = status
            if resource is Resource.IMAGE_SERVER:
                body["update_time"] = iso(time.time())

    def revoke_tokens(self) -> None:
        """Invalidate every issued IAM token, as a password change would."""
        self._tokens.clear()

    # --- serving ----------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving this cloud."""
        app = web.Application()
        app.router.add_get("/v1/{project_id}/dev-servers/images", self._list_devserver_images)
        app.router.add_get("/v1/{project_id}/image-servers", self._list_image_servers)
        app.router.add_get("/v1/{project_id}/dev-servers", self._list_dev_servers)
        app.router.add_get("/v1/{project_id}/dev-servers/all", self._list_dev_servers)
        app.router.add_get("/v1/{project_id}/dev-servers/images/{id}", self._devserver_image)
        app.router.add_get("/v1/{project_id}/image-servers/{id}", self._image_server)
        app.router.add_get("/v1/{project_id}/image-server-jobs", self._list_jobs)
        app.router.add_get("/v1/{project_id}/image-server-sub-jobs", self._list_sub_jobs)
        iam.routes(self, app)
        keys.routes(self, app)
        app.router.add_route("*", "/{tail:.*}", unknown_route)
        return app

    # --- list calls -------------------------------------------------------------------

    def _listed(self, resource: Resource, project_id: str) -> list[dict[str, Any]]:
        # Rebuilt after any change: every page of a sweep scanning 100,000 objects would
        # make the simulator, not the exporter, what a benchmark measures.
        version = (len(self.objects), self._changes)
        if self._index[0] != version:
            index: dict[tuple[Resource, str], list[dict[str, Any]]] = {}
            for (r, p, _), body in self.objects.items():
                if body is not None:
                    index.setdefault((r, p), []).append(body)
            self._index = (version, index)
        return self._index[1].get((resource, project_id), [])

    async def _list_prologue(
        self, request: web.Request, resource: Resource, offset: int
    ) -> web.StreamResponse | None:
        """Latency, authentication and faults of a list page; None to answer normally."""
        project_id = request.match_info["project_id"]
        if self.on_list_page is not None:
            self.on_list_page(resource, project_id, offset)
        keys = (list_key(resource, project_id, offset), list_key(resource, project_id))
        return await self._prologue(request, f"{resource.value}_list", keys)

    async def _prologue(
        self, request: web.Request, api: str, fault_keys: tuple[str, ...]
    ) -> web.StreamResponse | None:
        """Latency, authentication and the first of ``fault_keys`` that has a fault."""
        self.user_agents[request.headers.get("User-Agent", "")] += 1
        self.paths[request.path] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        denied = self.authenticate(request, request.match_info["project_id"])
        if denied is not None:
            return self.count(api, denied)
        for key in fault_keys:
            fault = self.take_fault(key)
            if fault is not None and fault.kind is FaultKind.SLOW:
                await asyncio.sleep(fault.delay)  # then the list answers as it would
            elif fault is not None:
                return self.count(api, await misbehave(request, fault, None))
        return None

    def _paging(self, request: web.Request, api: str) -> tuple[int, int] | web.StreamResponse:
        """``offset`` and ``limit`` of a paged list, or the 400 the API answers."""
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            offset, limit = -1, -1
        if offset < 0 or not 1 <= limit <= MAX_LIST_LIMIT:
            return self.count(
                api,
                json_response(
                    400, error_body(BodyShape.STANDARD, "WKS.0001", "invalid offset or limit")
                ),
            )
        return offset, limit if self.page_cap is None else min(limit, self.page_cap)

    async def _list_jobs(self, request: web.Request) -> web.StreamResponse:
        return await self._job_list(request, "image_server_job_list", sub_jobs=False)

    async def _list_sub_jobs(self, request: web.Request) -> web.StreamResponse:
        return await self._job_list(request, "image_server_sub_job_list", sub_jobs=True)

    async def _job_list(
        self, request: web.Request, api: str, *, sub_jobs: bool
    ) -> web.StreamResponse:
        paging = self._paging(request, api)
        if isinstance(paging, web.StreamResponse):
            return paging
        project_id = request.match_info["project_id"]
        if self.on_job_page is not None:
            self.on_job_page(project_id, paging[0])
        early = await self._prologue(request, api, (jobs_key(project_id),))
        if early is not None:
            return early
        self.job_queries.append(dict(request.query))
        jobs = self.jobs.get(project_id, [])
        if self.jobs_oldest_first:
            jobs = jobs[::-1]
        if sub_jobs:
            items = [s for j in jobs for s in j["sub_jobs"]]
        else:
            items = [{k: v for k, v in j.items() if k != "sub_jobs"} for j in jobs]
        for name in ("status", "job_type", "job_id"):
            if name in request.query:
                items = [i for i in items if i.get(name) == request.query[name]]
        offset, limit = paging
        body = {"count": len(items), "items": items[offset : offset + limit]}
        return self.count(api, json_response(200, json.dumps(body).encode()))

    async def _list_image_servers(self, request: web.Request) -> web.StreamResponse:
        paging = self._paging(request, "image_server_list")
        if isinstance(paging, web.StreamResponse):
            return paging
        offset, limit = paging
        api = "image_server_list"
        early = await self._list_prologue(request, Resource.IMAGE_SERVER, offset)
        if early is not None:
            return early
        items = self._listed(Resource.IMAGE_SERVER, request.match_info["project_id"])
        if "enterprise_project_id" in request.query:
            wanted = request.query["enterprise_project_id"]
            items = [i for i in items if i.get("enterprise_project_id") == wanted]
        if "server_name" in request.query:
            part = request.query["server_name"]
            items = [i for i in items if part in str(i.get("name", ""))]
        page = items[offset : offset + limit]
        return self.count(
            api, json_response(200, json.dumps({"count": len(items), "items": page}).encode())
        )

    async def _list_devserver_images(self, request: web.Request) -> web.StreamResponse:
        early = await self._list_prologue(request, Resource.DEVSERVER_IMAGE, 0)
        if early is not None:
            return early
        items = self._listed(Resource.DEVSERVER_IMAGE, request.match_info["project_id"])
        if "server_type" in request.query:
            items = [i for i in items if i.get("server_type") == request.query["server_type"]]
        total = len(items)
        cap = self.devserver_list_cap
        data = items if cap is None else items[:cap]
        pages = 1 if cap is None or total <= cap else -(-total // cap)
        body = {"current": 1, "pages": pages, "size": len(data), "total": total, "data": data}
        return self.count("devserver_image_list", json_response(200, json.dumps(body).encode()))

    async def _list_dev_servers(self, request: web.Request) -> web.StreamResponse:
        everyone = request.path.endswith("/all")
        api = "devserver_list_all" if everyone else "devserver_list"
        project_id = request.match_info["project_id"]
        key = dev_servers_key(project_id) + (":all" if everyone else "")
        early = await self._prologue(request, api, (key, dev_servers_key(project_id)))
        if early is not None:
            return early
        if self.on_dev_server_page is not None:
            self.on_dev_server_page(project_id, self.requests[(api, 200)] + 1)
        answer = devservers.page(self, project_id, dict(request.query), everyone=everyone)
        if answer is None:
            error = error_body(BodyShape.STANDARD, "ModelArts.0101", "invalid offset or limit")
            return self.count(api, json_response(400, error))
        return self.count(api, json_response(200, json.dumps(answer).encode()))

    async def _devserver_image(self, request: web.Request) -> web.StreamResponse:
        return await self._detail(request, Resource.DEVSERVER_IMAGE, "ModelArts.6404")

    async def _image_server(self, request: web.Request) -> web.StreamResponse:
        return await self._detail(request, Resource.IMAGE_SERVER, "WKS.0404")

    async def _detail(
        self, request: web.Request, resource: Resource, not_found_code: str
    ) -> web.StreamResponse:
        if self.on_request is not None:
            self.on_request()
        self.user_agents[request.headers.get("User-Agent", "")] += 1
        self.paths[request.path] += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request, resource, not_found_code)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, resource: Resource, not_found_code: str
    ) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        project_id = request.match_info["project_id"]
        key: ObjectKey = (resource, project_id, request.match_info["id"])
        denied = self.authenticate(request, project_id)
        if denied is not None:
            return self.count(resource.value, denied)
        fault = self.take_fault(key)
        body = self.objects.get(key)
        if fault is not None:
            return self.count(resource.value, await misbehave(request, fault, body))
        if body is None:
            return self.count(
                resource.value,
                json_response(
                    404, error_body(BodyShape.STANDARD, not_found_code, "resource not found")
                ),
            )
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = self._encoded[key] = json.dumps(body).encode()
        return self.count(resource.value, json_response(200, encoded))

    def count(self, api: str, resp: web.StreamResponse) -> web.StreamResponse:
        """Count an answer by API and status, and give it a request ID as the gateway does."""
        self.requests[(api, resp.status)] += 1
        resp.headers.setdefault("X-Request-Id", uuid.uuid4().hex)
        return resp

    def take_fault(self, key: ObjectKey | str) -> Fault | None:
        """The fault injected for ``key`` this time, if any (used up when it has ``times``)."""
        fault = self.faults.get(key)
        if fault is None or self._rng.random() >= fault.probability:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self.faults[key]
        return fault

    async def injected(
        self, request: web.Request, api: str, key: str | None = None
    ) -> web.StreamResponse | None:
        """The answer of a fault injected under ``key`` (by default ``api``), counted under
        ``api``, if one is."""
        fault = self.take_fault(api if key is None else key)
        return None if fault is None else self.count(api, await misbehave(request, fault, None))

    # --- authentication ---------------------------------------------------------------

    def authenticate(self, request: web.Request, project_id: str | None) -> web.Response | None:
        """None when the request may pass (see ``gateway.authenticate``)."""
        return authenticate(request, project_id, self._tokens, self.access_keys, self.clock)
