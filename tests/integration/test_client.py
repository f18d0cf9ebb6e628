"""The API client against the simulated cloud: auth, errors, retries, throttling, faults."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from yarl import URL

from exporter.cloud import convert
from exporter.cloud.auth import IamTokenAuth
from exporter.cloud.errors import ApiError, ErrorKind, parse_error_body
from exporter.cloud.ratelimit import RateLimiter
from exporter.cloud.transport import RetryPolicy, parse_retry_after
from exporter.domain.credentials import AkSkCredentials, IamCredentials
from exporter.domain.state import DevServerImage, ImageServer
from exporter.domain.targets import Resource
from exporter.simulator import BodyShape, Fault, FaultKind, SimulatedCloud, SimulatorServer
from tests.harness import IMG, SRV, FailingResolver, Harness, image_target, server_target
from tests.helpers import AK, PROJECT, devserver_body, image_server_body


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def harness(session: aiohttp.ClientSession) -> Harness:
    return Harness(session)


def populate(cloud: SimulatedCloud) -> None:
    cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, IMG, devserver_body(IMG))
    cloud.put(Resource.IMAGE_SERVER, PROJECT, SRV, image_server_body(SRV, "BUILDING"))


def break_target(cloud: SimulatedCloud, resource: Resource, fault: Fault) -> None:
    """Make the test image (or image server) misbehave."""
    cloud.faults[(resource, PROJECT, IMG if resource is Resource.DEVSERVER_IMAGE else SRV)] = fault


async def test_good_signature_fetches_both_kinds(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    image = await harness.client.fetch(image_target(simulator.url))
    server = await harness.client.fetch(server_target(simulator.url))
    assert image == DevServerImage(f"img-{IMG[:8]}", "X86_64", "ECS", "ACTIVE")
    assert isinstance(server, ImageServer) and server.status == "BUILDING"
    assert harness.requests("devserver_image", "200") == 1
    assert harness.requests("image_server", "200") == 1


async def test_bad_signature_is_401_and_never_retried(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    wrong = AkSkCredentials(AK, "not-the-secret-key")
    with pytest.raises(ApiError) as info:
        await harness.client.fetch(image_target(simulator.url, wrong))
    err = info.value
    assert (err.status, err.error_code) == (401, "APIGW.0301")
    assert err.request_id and err.request_id in str(err)
    assert "not-the-secret-key" not in str(err)
    assert simulator.cloud.requests[("devserver_image", 401)] == 1
    assert harness.errors("devserver_image", "APIGW.0301") == 1


async def test_gateway_locks_key_after_five_bad_signatures(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    wrong = AkSkCredentials(AK, "wrong")
    for _ in range(5):
        with pytest.raises(ApiError):
            await harness.client.fetch(image_target(simulator.url, wrong))
    with pytest.raises(ApiError, match="locked"):
        await harness.client.fetch(image_target(simulator.url))


async def test_temporary_credentials_need_the_security_token(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_access_key("TEMPAK", "temp-sk-123456", token="sec-token-abcdef")
    fetched = await harness.client.fetch(
        image_target(simulator.url, AkSkCredentials("TEMPAK", "temp-sk-123456", "sec-token-abcdef"))
    )
    assert isinstance(fetched, DevServerImage)
    with pytest.raises(ApiError, match="X-Security-Token"):
        await harness.client.fetch(
            image_target(simulator.url, AkSkCredentials("TEMPAK", "temp-sk-123456"))
        )


def iam_creds(url: str, password: str = "iam-password-1") -> IamCredentials:
    return IamCredentials("monitor", password, "acme", url)


async def test_iam_token_is_issued_once_and_reused(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    creds = iam_creds(simulator.url)
    await asyncio.gather(
        harness.client.fetch(image_target(simulator.url, creds)),
        harness.client.fetch(server_target(simulator.url, creds)),
    )
    await harness.client.fetch(image_target(simulator.url, creds))
    assert harness.requests("iam_token", "201") == 1
    assert harness.requests("devserver_image", "200") == 2


async def test_iam_token_refreshed_before_expiry(
    simulator: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    simulator.cloud.token_lifetime = 100.0
    now = [time.time()]
    h = Harness(session)
    auth = IamTokenAuth(iam_creds(simulator.url), h.transport, clock=lambda: now[0])
    url = URL(simulator.url)
    first = await auth.headers("GET", url, PROJECT, None)
    now[0] += 70  # before three quarters of the lifetime: still cached
    assert (await auth.headers("GET", url, PROJECT, None)) == first
    now[0] += 10  # past three quarters: refreshed although not yet expired
    second = await auth.headers("GET", url, PROJECT, None)
    assert second["X-Auth-Token"] != first["X-Auth-Token"]
    assert h.requests("iam_token", "201") == 2


async def test_iam_outage_keeps_using_an_unexpired_token(
    simulator: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    simulator.cloud.token_lifetime = 100.0
    now = [time.time()]
    h = Harness(session)
    auth = IamTokenAuth(iam_creds(simulator.url), h.transport, clock=lambda: now[0])
    url = URL(simulator.url)
    first = await auth.headers("GET", url, PROJECT, None)
    simulator.cloud.faults["iam"] = Fault(FaultKind.STATUS, status=503)
    now[0] += 80  # due for refresh, IAM is down, the token is still valid
    assert await auth.headers("GET", url, PROJECT, None) == first
    now[0] += 30  # expired: the outage now shows
    with pytest.raises(ApiError) as info:
        await auth.headers("GET", url, PROJECT, None)
    assert info.value.status == 503


async def test_revoked_token_is_refreshed_once_after_401(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    creds = iam_creds(simulator.url)
    await harness.client.fetch(image_target(simulator.url, creds))
    simulator.cloud.revoke_tokens()
    assert isinstance(
        await harness.client.fetch(image_target(simulator.url, creds)), DevServerImage
    )
    assert harness.requests("iam_token", "201") == 2
    assert harness.requests("devserver_image", "401") == 1


async def test_401_after_fresh_token_is_not_retried_in_a_loop(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    simulator.cloud.token_lifetime = -1  # every token is already expired when used
    with pytest.raises(ApiError) as info:
        await harness.client.fetch(image_target(simulator.url, iam_creds(simulator.url)))
    assert info.value.status == 401
    assert harness.requests("devserver_image", "401") == 2
    assert harness.requests("iam_token", "201") == 2


async def test_wrong_iam_password_backs_off(simulator: SimulatorServer, harness: Harness) -> None:
    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "right-password")
    creds = iam_creds(simulator.url, "wrong-password")
    for _ in range(3):
        with pytest.raises(ApiError) as info:
            await harness.client.fetch(image_target(simulator.url, creds))
        assert info.value.status == 401
        assert info.value.error_code == "401"  # IAM's nested {"error": {"code": 401}} body
    assert harness.requests("iam_token", "401") == 1
    assert "wrong-password" not in str(info.value)


async def test_404_is_an_answer(simulator: SimulatorServer, harness: Harness) -> None:
    assert await harness.client.fetch(image_target(simulator.url)) is None
    assert harness.requests("devserver_image", "404") == 1
    assert harness.errors("devserver_image", "ModelArts.6404") == 0


@dataclass(frozen=True)
class RetryCase:
    """A fault on the image server, and what three attempts (retries=2) make of it."""

    name: str
    fault: Fault
    error: str | None  # the error label raised in the end, None when the fetch succeeds
    statuses: dict[str, int]  # requests counted by HTTP status


RETRY_CASES = [
    RetryCase("429 with Retry-After, then success",
              Fault(FaultKind.THROTTLE, retry_after="0", times=2), None, {"429": 2, "200": 1}),
    RetryCase("429 every time gives up after the retries",
              Fault(FaultKind.THROTTLE, retry_after="0"), "APIGW.0308", {"429": 3, "200": 0}),
    RetryCase("500 once, then success",
              Fault(FaultKind.STATUS, status=500, times=1), None, {"500": 1, "200": 1}),
    RetryCase("503 once, then success",
              Fault(FaultKind.STATUS, status=503, times=1), None, {"503": 1, "200": 1}),
    RetryCase("gateway 404 is an error, not absence, and not retried",
              Fault(FaultKind.STATUS, status=404, error_code="APIGW.0101"), "APIGW.0101",
              {"404": 1, "200": 0}),
]  # fmt: skip


@pytest.mark.parametrize("case", RETRY_CASES, ids=[c.name for c in RETRY_CASES])
async def test_retries_by_fault(
    simulator: SimulatorServer, harness: Harness, case: RetryCase
) -> None:
    populate(simulator.cloud)
    break_target(simulator.cloud, Resource.IMAGE_SERVER, case.fault)
    if case.error is None:
        assert isinstance(await harness.client.fetch(server_target(simulator.url)), ImageServer)
    else:
        with pytest.raises(ApiError) as info:
            await harness.client.fetch(server_target(simulator.url))
        assert info.value.label == case.error
        assert harness.errors("image_server", case.error) == case.statuses[str(info.value.status)]
    for status, count in case.statuses.items():
        assert harness.requests("image_server", status) == count, status


async def test_429_without_retry_after_waits_the_advised_pause(
    simulator: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    populate(simulator.cloud)
    break_target(simulator.cloud, Resource.IMAGE_SERVER, Fault(FaultKind.THROTTLE, times=1))
    policy = RetryPolicy(retries=1, throttle_min=0.2, throttle_max=0.25)
    h = Harness(session, policy=policy)
    started = time.monotonic()
    assert isinstance(await h.client.fetch(server_target(simulator.url)), ImageServer)
    assert time.monotonic() - started >= 0.2  # a lower bound only: slowness cannot fail it


async def test_retry_never_runs_past_the_deadline(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    break_target(
        simulator.cloud, Resource.IMAGE_SERVER, Fault(FaultKind.THROTTLE, retry_after="30")
    )
    started = time.monotonic()
    with pytest.raises(ApiError):
        await harness.client.fetch(server_target(simulator.url), deadline=started + 5)
    assert harness.requests("image_server", "429") == 1


@pytest.mark.parametrize("shape", list(BodyShape))
async def test_every_error_body_shape_is_understood(
    simulator: SimulatorServer, harness: Harness, shape: BodyShape
) -> None:
    populate(simulator.cloud)
    break_target(
        simulator.cloud,
        Resource.DEVSERVER_IMAGE,
        Fault(FaultKind.STATUS, status=403, error_code="ModelArts.0203", shape=shape),
    )
    with pytest.raises(ApiError) as info:
        await harness.client.fetch(image_target(simulator.url))
    err = info.value
    assert err.status == 403
    assert "injected failure" in str(err)
    if shape is BodyShape.TEXT:
        assert err.error_code is None and err.label == "http_403"
    else:
        assert err.error_code == "ModelArts.0203"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error_code": "A.1", "error_msg": "m"}', ("A.1", "m")),
        (b'{"errorCode": "A.2", "errorMsg": "m"}', ("A.2", "m")),
        (b'{"code": "A.3", "message": "m"}', ("A.3", "m")),
        (b'{"error": {"error_code": "A.4", "error_msg": "m"}}', ("A.4", "m")),
        (b'{"error": {"code": 401, "message": "m", "title": "Unauthorized"}}', ("401", "m")),
        (b"<html>oops</html>", (None, None)),
        (b"[1, 2]", (None, None)),
        (b"", (None, None)),
    ],
)
def test_parse_error_body(body: bytes, expected: tuple[str | None, str | None]) -> None:
    assert parse_error_body(body) == expected


async def test_timeout(simulator: SimulatorServer, session: aiohttp.ClientSession) -> None:
    populate(simulator.cloud)
    break_target(simulator.cloud, Resource.DEVSERVER_IMAGE, Fault(FaultKind.HANG, delay=10))
    h = Harness(session, timeout=0.3, policy=RetryPolicy(retries=0))
    with pytest.raises(ApiError) as info:
        await h.client.fetch(image_target(simulator.url))
    assert info.value.kind is ErrorKind.TIMEOUT
    assert h.errors("devserver_image", "timeout") == 1
    assert h.requests("devserver_image", "error") == 1


async def test_slow_answer_within_timeout_succeeds(
    simulator: SimulatorServer, harness: Harness
) -> None:
    populate(simulator.cloud)
    break_target(simulator.cloud, Resource.DEVSERVER_IMAGE, Fault(FaultKind.SLOW, delay=0.2))
    assert isinstance(await harness.client.fetch(image_target(simulator.url)), DevServerImage)


@pytest.mark.parametrize(
    ("kind", "error_kind", "label", "words"),
    [
        (FaultKind.RESET, ErrorKind.CONNECTION, "connection", "closed the connection"),
        (FaultKind.TRUNCATED, ErrorKind.CONNECTION, "connection", "broke while reading"),
        (
            FaultKind.MALFORMED,
            ErrorKind.INVALID_RESPONSE,
            "invalid_response",
            "not the expected JSON",
        ),
        (FaultKind.HTML, ErrorKind.INVALID_RESPONSE, "invalid_response", "text/html"),
        (FaultKind.HUGE, ErrorKind.INVALID_RESPONSE, "invalid_response", "larger than"),
    ],
)
async def test_broken_answers(
    simulator: SimulatorServer,
    harness: Harness,
    kind: FaultKind,
    error_kind: ErrorKind,
    label: str,
    words: str,
) -> None:
    populate(simulator.cloud)
    break_target(simulator.cloud, Resource.DEVSERVER_IMAGE, Fault(kind))
    with pytest.raises(ApiError) as info:
        await harness.client.fetch(image_target(simulator.url))
    assert info.value.kind is error_kind
    assert words in str(info.value)
    assert harness.errors("devserver_image", label) >= 1


async def test_refused_port(harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ApiError) as info:
            await harness.client.fetch(image_target(f"http://127.0.0.1:{port}"))
    assert info.value.kind is ErrorKind.CONNECTION
    assert "cannot connect" in str(info.value)


async def test_dns_failure() -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=FailingResolver())
    ) as s:
        h = Harness(s, policy=RetryPolicy(retries=0))
        with pytest.raises(ApiError) as info:
            await h.client.fetch(image_target("https://modelarts.nowhere.example"))
    assert info.value.kind is ErrorKind.CONNECTION
    assert "cannot resolve modelarts.nowhere.example" in str(info.value)


async def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(50.0)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(11)))
    assert time.monotonic() - started >= 10 / 50 * 0.99  # lower bound only


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert 0 <= (parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") or 0) <= 0.0


def test_unknown_fields_and_statuses_never_fail_parsing() -> None:
    from exporter.cloud.models import ImageServerModel

    body: dict[str, Any] = image_server_body(
        "x", status="SOMETHING_NEW", brand_new_field={"a": 1}, name=42
    )
    server = convert.image_server(ImageServerModel.model_validate(body))
    assert server.status == "SOMETHING_NEW" and server.name == "42"


async def test_typed_methods_return_the_lenient_models(
    simulator: SimulatorServer, harness: Harness
) -> None:
    from exporter.cloud.models import DevServerImageModel, ImageServerModel

    populate(simulator.cloud)
    image = await harness.client.get_devserver_image(image_target(simulator.url))
    server = await harness.client.get_image_server(server_target(simulator.url))
    assert isinstance(image, DevServerImageModel) and image.image_id == IMG
    assert isinstance(server, ImageServerModel) and server.image_ref is not None
    assert server.image_ref.image_type == "private"
    simulator.cloud.delete(Resource.IMAGE_SERVER, PROJECT, SRV)
    assert await harness.client.get_image_server(server_target(simulator.url)) is None


async def test_requests_carry_the_product_user_agent_and_iam_skips_the_catalog(
    simulator: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    from exporter import __version__

    populate(simulator.cloud)
    simulator.cloud.add_iam_user("acme", "monitor", "iam-password-1")
    # With its catalog IAM's token answer is over 150 kB: it fits this cap only without.
    h = Harness(session, max_body=16 << 10)
    image = await h.client.fetch(image_target(simulator.url, iam_creds(simulator.url)))
    assert isinstance(image, DevServerImage)
    await h.client.fetch(server_target(simulator.url))
    assert set(simulator.cloud.user_agents) == {f"huaweicloud-image-exporter/{__version__}"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2022-03-07T10:40:43.858Z", 1646649643.858),
     ("2022-03-07T10:40:43Z", 1646649643.0),
     ("2022-03-07T18:40:43+08:00", 1646649643.0),
     ("2022-03-07 10:40:43", 1646649643.0),  # no offset: UTC, as the API documents
     ("1646649643858", None),  # epoch milliseconds: not read as a date in 1796
     ("1646649643", None),
     ("20220307T104043Z", None),  # ISO's compact form: not what the API sends
     ("", None), (None, None), ("yesterday", None)],
)  # fmt: skip
def test_timestamps(text: str | None, expected: float | None) -> None:
    assert convert.parse_timestamp(text) == expected


async def test_an_epoch_number_in_a_time_field_is_left_out(
    simulator: SimulatorServer, harness: Harness
) -> None:
    body = image_server_body(SRV, create_time=1646649643858, update_time="2022-03-07T10:41:43Z")
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, SRV, body)
    server = await harness.client.fetch(server_target(simulator.url))
    assert isinstance(server, ImageServer)
    assert server.created is None and server.updated == 1646649703.0


def test_a_huge_time_is_not_parsed_nor_kept() -> None:
    before = convert._parse_timestamp.cache_info().currsize
    assert convert.parse_timestamp("2022-03-07T10:40:43Z" + "x" * 1_000_000) is None
    assert convert.parse_timestamp("9999-12-31T00:00:00Z") is None  # past 2100
    assert convert._parse_timestamp.cache_info().currsize == before + 1  # only the second
