"""The official Huawei Cloud SDK as the independent oracle for every request and answer.

Our simulator shares our assumptions; the SDK does not. Each request the exporter makes is
made once by the exporter's client and once by the SDK's own client, against the same
loopback capture server, and the two are compared: method, path bytes, query names, values
and their encoding, and the headers that matter; the SDK's signer then re-signs the
exporter's request and must write the same Authorization header. Each answer the exporter
parses is built with the SDK's model classes (every field filled, every enum value, and
optional fields left out) and read through the exporter's client. Finally the SDK's
clients are pointed at the simulator: it must accept their signatures, and every field it
answers with must be one the SDK's models know.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from exporter.cloud.client import HuaweiCloudClient
from exporter.cloud.convert import parse_timestamp
from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials, Credentials, IamCredentials
from exporter.domain.jobs import JOB_TYPES, SUB_JOB_STATUSES
from exporter.domain.state import DevServerImage, ImageServer
from exporter.domain.targets import (
    DevServerScope,
    Discovery,
    ProjectEndpoint,
    Resource,
    Sweep,
    SweepKey,
    Target,
    TargetKey,
)
from exporter.simulator import SimulatedCloud, SimulatorServer
from exporter.simulator.devservers import add_dev_server
from exporter.simulator.iam import DOMAIN_ID
from exporter.simulator.jobs import add_job
from tests import sdk
from tests.harness import Harness
from tests.helpers import AK, PROJECT, SK, devserver_body, image_id, image_server_body, serving

IMG = image_id(7)
SRV = "srv 1/x?y"  # characters a path must escape, as the SDK escapes them
TOKEN = "temporary-security-token"
USER = ("exporter", "a password", "my-domain")
EXPIRES = "2099-01-01T00:00:00.000000Z"


@pytest.fixture
async def capture() -> AsyncIterator[tuple[sdk.CaptureServer, str]]:
    server = sdk.CaptureServer()
    async with serving(server.app()) as url:
        yield server, url


@pytest.fixture
async def client() -> AsyncIterator[HuaweiCloudClient]:
    async with aiohttp.ClientSession() as session:
        yield Harness(session).client


def same_request(ours: sdk.Captured, theirs: sdk.Captured) -> None:
    """The two requests name the same resource the same way, with the same meaning."""
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.query == theirs.query, "query names, values or encoding differ"
    for name in ("X-Project-Id", "X-Domain-Id", "X-Security-Token"):
        assert ours.header(name) == theirs.header(name), f"{name} differs"
    # The SDK leaves Content-Type out of its domain lookup only; a signed header either way.
    if theirs.header("Content-Type") is not None:
        assert ours.header("Content-Type") == theirs.header("Content-Type")


def signed_like_the_sdk(ours: sdk.Captured) -> None:
    assert sdk.verify_with_sdk_signer(ours, AK, SK), "the SDK's signer signs it otherwise"


async def in_thread(call: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(call)


def workspace(url: str, token: str | None = None) -> Any:
    return sdk.project_client(sdk.workspaceapp, "WorkspaceAppClient", url, PROJECT, AK, SK, token)


def modelarts(url: str) -> Any:
    return sdk.project_client(sdk.modelarts, "ModelArtsClient", url, PROJECT, AK, SK)


def target(
    url: str, resource: Resource, oid: str, credentials: Credentials | None = None
) -> Target:
    return Target(TargetKey(resource, PROJECT, oid), url, credentials or AkSkCredentials(AK, SK))


def scope(url: str) -> ProjectEndpoint:
    return ProjectEndpoint(PROJECT, url, AkSkCredentials(AK, SK))


def servers_of(url: str, *, everyone: bool = True) -> DevServerScope:
    return DevServerScope(PROJECT, url, AkSkCredentials(AK, SK), everyone)


# --- requests ------------------------------------------------------------------------------


async def test_dev_server_image_detail(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    server.answers[f"/v1/{PROJECT}/dev-servers/images/{IMG}"] = (200, {"image_id": IMG}, {})
    await client.get_devserver_image(target(url, Resource.DEVSERVER_IMAGE, IMG))
    [ours] = server.take()
    request = sdk.modelarts.GetDevServerImageRequest(id=IMG)
    await in_thread(lambda: modelarts(url).get_dev_server_image(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


@pytest.mark.parametrize("token", [None, TOKEN], ids=["permanent", "temporary"])
async def test_image_server_detail(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, token: str | None
) -> None:
    server, url = capture
    server.answers[f"/v1/{PROJECT}/image-servers/{SRV}"] = (200, {"id": SRV}, {})
    credentials = AkSkCredentials(AK, SK, token)
    await client.get_image_server(target(url, Resource.IMAGE_SERVER, SRV, credentials))
    [ours] = server.take()
    request = sdk.workspaceapp.ShowImageServerRequest(server_id=SRV)
    await in_thread(lambda: workspace(url, token).show_image_server(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    assert ours.path == "/v1/0123456789abcdef0123456789abcdef/image-servers/srv%201%2Fx%3Fy"
    signed_like_the_sdk(ours)
    if token:
        assert "x-security-token" in (ours.header("Authorization") or "")


async def test_dev_server_image_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    key = SweepKey(Resource.DEVSERVER_IMAGE, PROJECT)
    sweep = Sweep(key, url, AkSkCredentials(AK, SK), Discovery(server_type="ECS"))
    await client.list_objects(sweep)
    [ours] = server.take()
    request = sdk.modelarts.ListDevServerImagesRequest(server_type="ECS")
    await in_thread(lambda: modelarts(url).list_dev_server_images(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


async def test_image_server_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    key = SweepKey(Resource.IMAGE_SERVER, PROJECT)
    discovery = Discovery(enterprise_project_id="team a/b")  # a space and a slash to encode
    await client.list_objects(Sweep(key, url, AkSkCredentials(AK, SK), discovery))
    [ours] = server.take()
    request = sdk.workspaceapp.ListImageServersRequest(
        offset=0, limit=100, enterprise_project_id="team a/b"
    )
    await in_thread(lambda: workspace(url).list_image_servers(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    assert ("enterprise_project_id", "team%20a%2Fb") in ours.query
    signed_like_the_sdk(ours)


async def test_image_build_job_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    await client.jobs_page(scope(url), {"status": "WAITING", "limit": "100", "offset": "0"})
    [ours] = server.take()
    request = sdk.workspaceapp.ListImageJobsRequest(status="WAITING", limit=100, offset=0)
    await in_thread(lambda: workspace(url).list_image_jobs(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


@pytest.mark.parametrize("offset", [0, 2048])
async def test_dev_server_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, offset: int
) -> None:
    server, url = capture
    await client.dev_servers_page(servers_of(url, everyone=False), (offset, 1024))
    [ours] = server.take()
    request = sdk.modelarts.ListDevServersRequest(limit=1024, offset=offset)
    await in_thread(lambda: modelarts(url).list_dev_servers(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


async def test_every_users_dev_server_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    await client.dev_servers_page(servers_of(url), None)
    [ours] = server.take()
    request = sdk.modelarts.ListAllDevServersRequest()
    await in_thread(lambda: modelarts(url).list_all_dev_servers(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


@pytest.mark.parametrize("job_id", [None, "job 1/2"])
async def test_image_build_sub_job_list(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, job_id: str | None
) -> None:
    server, url = capture
    query = {"limit": "100", "offset": "200", **({"job_id": job_id} if job_id else {})}
    await client.sub_jobs_page(scope(url), query)
    [ours] = server.take()
    request = sdk.workspaceapp.ListImageSubJobsRequest(limit=100, offset=200, job_id=job_id)
    await in_thread(lambda: workspace(url).list_image_sub_jobs(request))
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


async def test_iam_domains_then_projects_with_x_domain_id(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    domains = {"domains": [{"id": DOMAIN_ID, "name": "d", "enabled": True}]}
    server.answers["/v3/auth/domains"] = (200, domains, {})
    server.answers["/v3/auth/projects"] = (200, {"projects": []}, {})
    account = Account("acct", AkSkCredentials(AK, SK), url)
    await client.list_projects(account)
    await client.list_projects(account)  # the domain ID is kept: asked once
    ours = server.take()
    assert [r.path for r in ours] == ["/v3/auth/domains", "/v3/auth/projects", "/v3/auth/projects"]
    await in_thread(lambda: sdk.iam_client(url, AK, SK).keystone_list_auth_projects(
        sdk.iam.KeystoneListAuthProjectsRequest()))  # fmt: skip
    theirs = server.take()
    assert [r.path for r in theirs] == ["/v3/auth/domains", "/v3/auth/projects"]
    for mine, sdks in zip(ours, theirs, strict=False):
        same_request(mine, sdks)
        signed_like_the_sdk(mine)
    assert ours[1].header("X-Domain-Id") == DOMAIN_ID == ours[2].header("X-Domain-Id")


async def test_iam_projects_with_a_configured_domain_id(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    server.answers["/v3/auth/projects"] = (200, {"projects": []}, {})
    await client.list_projects(Account("acct", AkSkCredentials(AK, SK), url, domain_id="dom1"))
    [ours] = server.take()
    await in_thread(lambda: sdk.iam_client(url, AK, SK, "dom1").keystone_list_auth_projects(
        sdk.iam.KeystoneListAuthProjectsRequest()))  # fmt: skip
    [theirs] = server.take()
    same_request(ours, theirs)
    signed_like_the_sdk(ours)


@pytest.mark.parametrize("scoped_to", ["project", "domain"])
async def test_iam_token_request(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, scoped_to: str
) -> None:
    server, url = capture
    token_answer = (201, {"token": {"expires_at": EXPIRES}}, {"X-Subject-Token": "tok"})
    server.answers["/v3/auth/tokens"] = token_answer
    server.answers["/v3/auth/projects"] = (200, {"projects": []}, {})
    server.answers[f"/v1/{PROJECT}/image-servers/s"] = (200, {"id": "s"}, {})
    name, password, domain = USER
    credentials = IamCredentials(name, password, domain, url)
    if scoped_to == "project":
        await client.get_image_server(target(url, Resource.IMAGE_SERVER, "s", credentials))
        scope_model = sdk.iam.AuthScope(project=sdk.iam.AuthScopeProject(id=PROJECT))
    else:
        await client.list_projects(Account("acct", credentials, url))
        scope_model = sdk.iam.AuthScope(domain=sdk.iam.AuthScopeDomain(name=domain))
    ours, then = server.take()
    assert then.header("X-Auth-Token") == "tok"
    user = sdk.iam.PwdPasswordUser(
        domain=sdk.iam.PwdPasswordUserDomain(name=domain), name=name, password=password
    )
    body = sdk.iam.KeystoneCreateUserTokenByPasswordRequestBody(
        auth=sdk.iam.PwdAuth(
            identity=sdk.iam.PwdIdentity(
                methods=["password"], password=sdk.iam.PwdPassword(user=user)
            ),
            scope=scope_model,
        )
    )
    request = sdk.iam.KeystoneCreateUserTokenByPasswordRequest(nocatalog="true", body=body)
    await in_thread(lambda: sdk.iam_client(url, AK, SK, "dom1")
                    .keystone_create_user_token_by_password(request))  # fmt: skip
    [theirs] = server.take()
    assert (ours.method, ours.path, ours.query) == (theirs.method, theirs.path, theirs.query)
    assert json.loads(ours.body) == json.loads(theirs.body)
    assert (ours.header("Content-Type") or "").startswith("application/json")


# --- answers ---------------------------------------------------------------------------


def _field_as(field: str, value: str) -> Callable[[type[Any], str], Any]:
    """For ``sdk.filled``: this value for fields of this name, the default for others."""

    def choose(klass: type[Any], name: str) -> Any:
        return value if name == field else None

    return choose


def _status_as(value: str) -> Callable[[type[Any], str], Any]:
    return _field_as("status", value)


@pytest.mark.parametrize("status", sdk.enum_values(sdk.workspaceapp.ImageServerStatus))
async def test_image_server_answer_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, status: str
) -> None:
    server, url = capture
    model = sdk.filled(sdk.workspaceapp.ShowImageServerResponse, _status_as(status))
    model.authorize_accounts = [
        sdk.filled(sdk.workspaceapp.ImageAccountInfo, _field_as("account_type", kind))
        for kind in ("USER", "USER_GROUP", "USER")
    ]  # fmt: skip
    body = sdk.wire_json(model)
    body["id"] = SRV
    server.answers[f"/v1/{PROJECT}/image-servers/{SRV}"] = (200, body, {})
    obj = await client.fetch(target(url, Resource.IMAGE_SERVER, SRV))
    assert isinstance(obj, ImageServer)
    assert obj.status == ("NULL" if status == "null" else status)  # the literal: not set
    assert (obj.name, obj.server_id, obj.instance_id) == ("name-value", "server_id-value",
                                                          "instance_id-value")  # fmt: skip
    assert obj.image_type == "image_type-value" and obj.image_id == "image_id-value"
    assert obj.created == obj.updated == parse_timestamp("2022-03-07T10:40:43.858Z")
    assert dict(obj.accounts) == {"USER": 2, "USER_GROUP": 1}


async def test_image_server_list_answer_built_by_the_sdk_with_optional_fields_missing(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    full = sdk.filled(sdk.workspaceapp.ImageServer, _status_as("ACTIVE"))
    full.id = "full"
    sparse = sdk.workspaceapp.ImageServer(id="sparse")  # every optional field left out
    answer = sdk.workspaceapp.ListImageServersResponse(count=2, items=[full, sparse])
    server.answers[f"/v1/{PROJECT}/image-servers"] = (200, sdk.wire_json(answer), {})
    key = SweepKey(Resource.IMAGE_SERVER, PROJECT)
    listing = await client.list_objects(Sweep(key, url, AkSkCredentials(AK, SK)))
    assert listing.incomplete is None and set(listing.objects) == {"full", "sparse"}
    sparse_obj = listing.objects["sparse"]
    assert isinstance(sparse_obj, ImageServer)
    assert sparse_obj.status == "NULL" and sparse_obj.created is None


async def test_dev_server_image_answers_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    detail = sdk.filled(sdk.modelarts.GetDevServerImageResponse)
    detail.image_id, detail.status = IMG, "INACTIVE"
    server.answers[f"/v1/{PROJECT}/dev-servers/images/{IMG}"] = (200, sdk.wire_json(detail), {})
    obj = await client.fetch(target(url, Resource.DEVSERVER_IMAGE, IMG))
    assert obj == DevServerImage("name-value", "arch-value", "server_type-value", "INACTIVE")
    item = sdk.filled(sdk.modelarts.ServerImageResponse)
    item.image_id = IMG
    answer = sdk.modelarts.ListDevServerImagesResponse(
        current=1, pages=2, size=1, total=2, data=[item, sdk.modelarts.ServerImageResponse()]
    )
    server.answers[f"/v1/{PROJECT}/dev-servers/images"] = (200, sdk.wire_json(answer), {})
    key = SweepKey(Resource.DEVSERVER_IMAGE, PROJECT)
    listing = await client.list_objects(Sweep(key, url, AkSkCredentials(AK, SK)))
    assert set(listing.objects) == {IMG}
    assert listing.incomplete == "the answer is the first of 2 pages"


async def test_dev_server_answers_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    full = sdk.filled(sdk.modelarts.ServerResponse)
    full.image.image_id, full.status = IMG, "STOP_FAILED"
    odd = sdk.filled(sdk.modelarts.ServerResponse)
    odd.id, odd.status = "odd", "HIBERNATING"  # a status nobody documented
    bare = sdk.modelarts.ServerResponse(id="bare")  # every optional field left out
    nameless = sdk.modelarts.ServerResponse(status="RUNNING")  # no ID: skipped, counted
    answer = sdk.modelarts.ListDevServersResponse(
        current=1, pages=1, size=4, total=4, data=[full, odd, bare, nameless]
    )
    server.answers[f"/v1/{PROJECT}/dev-servers"] = (200, sdk.wire_json(answer), {})
    page = await client.dev_servers_page(servers_of(url, everyone=False), (0, 1024))
    # An image ID that is not one (the SDK's filler) never becomes a label: "other".
    assert [(s.id, s.status, s.image_id) for s in page.items] == [
        ("id-value", "STOP_FAILED", IMG), ("odd", "other", "other"), ("bare", "other", ""),
    ]  # fmt: skip
    assert page.count == 4 and page.current == 1


@pytest.mark.parametrize(
    ("job_type", "status"),
    [(t, s) for t in sdk.enum_values(sdk.workspaceapp.ImageJobType)
     for s in sdk.enum_values(sdk.workspaceapp.ImageJobStatus)],
)  # fmt: skip
async def test_job_answers_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, job_type: str, status: str
) -> None:
    server, url = capture
    job = sdk.filled(sdk.workspaceapp.ImageJobInfo)
    job.job_type, job.status = job_type, status
    answer = sdk.workspaceapp.ListImageJobsResponse(count=1, items=[job])
    server.answers[f"/v1/{PROJECT}/image-server-jobs"] = (200, sdk.wire_json(answer), {})
    page = await client.jobs_page(scope(url), {"limit": "100", "offset": "0"})
    [item] = page.items
    assert (item.id, item.job_type, item.status) == ("id-value", job_type, status)
    assert item.begin is not None and page.count == 1  # the SDK's filled-in begin_time
    assert job_type in JOB_TYPES


@pytest.mark.parametrize("status", sdk.enum_values(sdk.workspaceapp.ImageJobDetailStatus))
async def test_sub_job_answers_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient, status: str
) -> None:
    server, url = capture
    sub = sdk.filled(sdk.workspaceapp.ImageJobDetailInfo, _status_as(status))
    sparse = sdk.workspaceapp.ImageJobDetailInfo(id="sparse")
    answer = sdk.workspaceapp.ListImageSubJobsResponse(count=2, items=[sub, sparse])
    server.answers[f"/v1/{PROJECT}/image-server-sub-jobs"] = (200, sdk.wire_json(answer), {})
    page = await client.sub_jobs_page(scope(url), {"limit": "100", "offset": "0"})
    full, empty = page.items
    assert full.status == status and status in SUB_JOB_STATUSES
    assert (full.id, full.job_id, full.resource_id, full.resource_name) == (
        "id-value", "job_id-value", "resource_id-value", "resource_name-value")  # fmt: skip
    assert (full.error_code, full.error_message) == ("error_code-value", "error_message-value")
    assert full.begin == full.end == parse_timestamp("2022-03-07T10:40:43.858Z")
    assert (empty.id, empty.status, empty.begin) == ("sparse", "other", None)


async def test_iam_answers_built_by_the_sdk(
    capture: tuple[sdk.CaptureServer, str], client: HuaweiCloudClient
) -> None:
    server, url = capture
    domains = sdk.iam.KeystoneListAuthDomainsResponse(domains=[sdk.filled(sdk.iam.Domains)])
    domains.domains[0].id = DOMAIN_ID
    projects = []
    for n, (enabled, is_domain) in enumerate([(True, False), (False, False), (True, True)]):
        p = sdk.filled(sdk.iam.AuthProjectResult)
        p.id, p.name, p.enabled, p.is_domain = f"p{n}", f"cn-north-4_{n}", enabled, is_domain
        projects.append(p)
    answer = sdk.iam.KeystoneListAuthProjectsResponse(
        links=sdk.filled(sdk.iam.LinksSelf), projects=projects
    )
    server.answers["/v3/auth/domains"] = (200, sdk.wire_json(domains), {})
    server.answers["/v3/auth/projects"] = (200, sdk.wire_json(answer), {})
    found = await client.list_projects(Account("acct", AkSkCredentials(AK, SK), url))
    assert [(p.id, p.region) for p in found] == [("p0", "cn-north-4")]
    token = sdk.iam.KeystoneCreateUserTokenByPasswordResponse(token=sdk.filled(sdk.iam.TokenResult))
    token.token.expires_at = EXPIRES
    server.answers["/v3/auth/tokens"] = (201, sdk.wire_json(token), {"X-Subject-Token": "t"})
    server.answers[f"/v1/{PROJECT}/image-servers/s"] = (200, {"id": "s"}, {})
    credentials = IamCredentials(*USER, url)
    await client.get_image_server(target(url, Resource.IMAGE_SERVER, "s", credentials))
    assert server.captured[-1].header("X-Auth-Token") == "t"


# --- the simulator, checked by the SDK -----------------------------------------------------


def no_unknown_fields(response: Any, type_name: str) -> None:
    body = json.loads(response.raw_content)
    assert sdk.unknown_fields(body, type_name) == [], "the simulator answers what the SDK lacks"


@pytest.fixture
async def populated(simulator: SimulatorServer) -> SimulatorServer:
    cloud: SimulatedCloud = simulator.cloud
    cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, IMG, devserver_body(IMG, arch="ARM"))
    for status in [*sdk.enum_values(sdk.workspaceapp.ImageServerStatus), None]:
        sid = f"srv-{status}"
        cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid, status))
    add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-ERROR", "e")], begin=1.7e9,
            end=1.7e9 + 60, error=("WKS.0500", "disk full"))  # fmt: skip
    add_job(cloud, PROJECT, "CREATE_SERVER", "RUNNING", [("srv-CREATING", "c")], begin=1.7e9)
    add_dev_server(cloud, PROJECT, "ds-1", "RUNNING", devserver_body(IMG, arch="ARM"))
    cloud.add_project(PROJECT, "cn-north-4")
    cloud.require_domain_id = True
    return simulator


async def test_the_simulator_answers_only_what_the_sdk_models_know(
    populated: SimulatorServer,
) -> None:
    url = populated.url
    ws, ma = workspace(url), modelarts(url)
    w, m = sdk.workspaceapp, sdk.modelarts
    calls: list[tuple[Callable[[], Any], str]] = [
        (lambda: ma.get_dev_server_image(m.GetDevServerImageRequest(id=IMG)),
         "GetDevServerImageResponse"),
        (lambda: ma.list_dev_server_images(m.ListDevServerImagesRequest()),
         "ListDevServerImagesResponse"),
        (lambda: ma.list_dev_servers(m.ListDevServersRequest(limit=1024, offset=0)),
         "ListDevServersResponse"),
        (lambda: ws.show_image_server(w.ShowImageServerRequest(server_id="srv-ACTIVE")),
         "ShowImageServerResponse"),
        (lambda: ws.list_image_servers(w.ListImageServersRequest(offset=0, limit=100)),
         "ListImageServersResponse"),
        (lambda: ws.list_image_jobs(w.ListImageJobsRequest(offset=0, limit=100)),
         "ListImageJobsResponse"),
        (lambda: ws.list_image_sub_jobs(w.ListImageSubJobsRequest(offset=0, limit=100)),
         "ListImageSubJobsResponse"),
        (lambda: sdk.iam_client(url, AK, SK).keystone_list_auth_projects(
            sdk.iam.KeystoneListAuthProjectsRequest()), "KeystoneListAuthProjectsResponse"),
        (lambda: sdk.iam_client(url, AK, SK).keystone_list_auth_domains(
            sdk.iam.KeystoneListAuthDomainsRequest()), "KeystoneListAuthDomainsResponse"),
    ]  # fmt: skip
    for call, type_name in calls:
        response = await in_thread(call)  # the simulator checked the SDK's signature
        assert response.status_code == 200, type_name
        no_unknown_fields(response, type_name)
    assert populated.cloud.domain_ids[-1] == DOMAIN_ID  # the SDK found the domain ID too


async def test_the_simulators_iam_token_answer_is_an_sdk_token(
    simulator: SimulatorServer,
) -> None:
    simulator.cloud.add_iam_user(USER[2], USER[0], USER[1])
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": USER[0], "password": USER[1], "domain": {"name": USER[2]}}}},
        "scope": {"project": {"id": PROJECT}}}}  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{simulator.url}/v3/auth/tokens?nocatalog=true", json=body) as resp,
    ):
        assert resp.status == 201 and resp.headers["X-Subject-Token"]
        answer = await resp.json()
    assert sdk.unknown_fields(answer, "KeystoneCreateUserTokenByPasswordResponse") == []


def test_the_sdk_version_checked_against_is_the_one_documented() -> None:
    readme = (__import__("pathlib").Path(__file__).parents[2] / "README.md").read_text()
    assert f"huaweicloudsdkcore {sdk.sdk_version}" in readme
