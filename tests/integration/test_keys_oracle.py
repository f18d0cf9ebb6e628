"""The keyless sources against the official SDK's own accessors: for each source both ask
one loopback capture server, and the requests (method, path, the headers that matter, the
body) and the keys read from the same answer must be the same. Then a key fetched from the
simulated cloud signs requests that the SDK's signer verifies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.cloud.errors import ApiError
from exporter.cloud.keys.answer import KeyAnswerError, TemporaryKey, parse_key
from exporter.cloud.keys.sources import fetcher_for
from exporter.domain.credentials import (
    FederatedSource,
    MetadataSource,
    OidcSource,
    PodIdentitySource,
    TemporarySource,
)
from exporter.domain.targets import Resource, Target, TargetKey
from tests import sdk
from tests.harness import Harness
from tests.helpers import PROJECT, serving

internal = sdk.internal

EXPIRES = "2031-10-17T18:51:25.231000Z"
KEY = {"access": "TMPAK0000000000000001", "secret": "tmp-secret-0123456789",
       "securitytoken": "tmp-token-" + "x" * 64, "expires_at": EXPIRES}  # fmt: skip
TOKEN_FILE_CONTENT = "projected-token-0123456789"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK reads an expiry with time.mktime (local time): compare in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def capture() -> AsyncIterator[tuple[sdk.CaptureServer, str]]:
    server = sdk.CaptureServer()
    async with serving(server.app()) as url:
        yield server, url


async def ours(source: TemporarySource) -> TemporaryKey:
    async with aiohttp.ClientSession() as session:
        fetcher = fetcher_for(source, Harness(session).transport, lambda _: None)
        return await fetcher.fetch(None)


def sdk_http_client() -> Any:
    handler = sdk.DefaultExceptionHandler()
    return sdk.HttpClient(sdk.http_config(), None, handler, logging.getLogger("sdk"))


def same_key(key: TemporaryKey, theirs: Any) -> None:
    assert (key.access_key, key.secret_key, key.security_token) == (
        theirs.access,
        theirs.secret,
        theirs.security_token,
    )
    # The SDK's time.mktime drops the fraction of a second; the second is the same.
    assert int(key.expires_at) == theirs.expire_at


HEADERS = ("X-Metadata-Token-Ttl-Seconds", "X-Metadata-Token", "Authorization", "X-Idp-Id",
           "Content-Type")  # fmt: skip


def same_requests(mine: list[sdk.Captured], theirs: list[sdk.Captured]) -> None:
    assert [(c.method, c.path, c.query) for c in mine] == [
        (c.method, c.path, c.query) for c in theirs
    ]
    for a, b in zip(mine, theirs, strict=True):
        for name in HEADERS:
            assert a.header(name) == b.header(name), f"{a.path}: {name} differs"
        assert (json.loads(a.body) if a.body else None) == (
            json.loads(b.body) if b.body else None
        ), a.path


@pytest.mark.parametrize("token_service", [True, False])
async def test_metadata_asks_as_the_sdk_does(
    capture: tuple[sdk.CaptureServer, str], utc: None, monkeypatch: pytest.MonkeyPatch,
    token_service: bool,
) -> None:  # fmt: skip
    server, url = capture
    token_answer: sdk.Answer = (200, b"session-token-1", {}) if token_service else (404, b"no", {})
    server.answers["/meta-data/latest/api/token"] = token_answer
    server.answers["/openstack/latest/securitykey"] = (200, {"credential": KEY}, {})
    key = await ours(MetadataSource(url))
    mine = server.take()
    monkeypatch.setattr(internal.MetadataAccessor, "_METADATA_ENDPOINT", url)
    theirs_key = await asyncio.to_thread(lambda: internal.MetadataAccessor().get_credential())
    same_requests(mine, server.take())
    same_key(key, theirs_key)


async def test_pod_identity_asks_as_the_sdk_does(
    capture: tuple[sdk.CaptureServer, str], utc: None, tmp_path: Path
) -> None:
    server, url = capture
    shape = {"credentials": {"accessKeyId": KEY["access"], "secretAccessKey": KEY["secret"],
                             "securityToken": KEY["securitytoken"], "expiration": EXPIRES}}  # fmt: skip
    server.answers["/v1/credentials"] = (200, shape, {})
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_FILE_CONTENT + "\n")
    key = await ours(PodIdentitySource(url + "/v1/credentials", str(token_file)))
    mine = server.take()
    accessor = internal.PodIdentityAccessor(url + "/v1/credentials", str(token_file))
    theirs_key = await asyncio.to_thread(accessor.get_credential)
    same_requests(mine, server.take())
    same_key(key, theirs_key)
    assert mine[0].header("Authorization") == TOKEN_FILE_CONTENT


async def test_oidc_asks_as_the_sdk_does(
    capture: tuple[sdk.CaptureServer, str], utc: None, tmp_path: Path
) -> None:
    server, url = capture
    shape = {"credentials": {"access_key_id": KEY["access"], "secret_access_key": KEY["secret"],
                             "security_token": KEY["securitytoken"], "expiration": EXPIRES}}  # fmt: skip
    server.answers["/v5/agencies/assume-with-oidc"] = (201, shape, {})
    token_file = tmp_path / "id-token"
    token_file.write_text("eyJ.id-token.sig")
    source = OidcSource(url, "urn:provider", "urn:agency", str(token_file), "", "exporter", 1800)
    key = await ours(source)
    mine = server.take()
    accessor = internal.OidcStsAccessor("urn:provider", "urn:agency", "eyJ.id-token.sig",
                                        "exporter", 1800)  # fmt: skip
    theirs_key = await asyncio.to_thread(
        lambda: accessor.get_credential(sts_endpoint=url, http_client=sdk_http_client())
    )
    same_requests(mine, server.take())
    same_key(key, theirs_key)


async def test_federated_id_token_asks_as_the_sdk_does(
    capture: tuple[sdk.CaptureServer, str], utc: None, tmp_path: Path
) -> None:
    server, url = capture
    server.answers["/v3.0/OS-AUTH/id-token/tokens"] = (
        201,
        {"token": {}},
        {"X-Subject-Token": "unscoped-1"},
    )
    server.answers["/v3.0/OS-CREDENTIAL/securitytokens"] = (201, {"credential": KEY}, {})
    token_file = tmp_path / "idp-token"
    token_file.write_text("idp-token-1")
    key = await ours(FederatedSource(url, "my-idp", str(token_file)))
    mine = server.take()
    theirs_key = await asyncio.to_thread(lambda: internal.FederalAccessor().get_credential(
        iam_endpoint=url, http_client=sdk_http_client(), idp_id="my-idp",
        id_token_file=str(token_file),
    ))  # fmt: skip
    same_requests(mine, server.take())
    same_key(key, theirs_key)


SHAPES = [
    {"credential": KEY},
    {"credentials": KEY},
    KEY,
    {"credential": {"accessKeyId": "A", "secretAccessKey": "S", "securityToken": "T",
                    "expiration": EXPIRES}},
    {"access_key_id": "A", "secret_access_key": "S", "security_token": "T", "expires_at": EXPIRES},
    # The first name present wins, as in the SDK.
    {"access": "A1", "accessKeyId": "A2", "secret": "S", "securitytoken": "T",
     "expires_at": EXPIRES, "expiration": "2000-01-01T00:00:00.000000Z"},
]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_every_answer_shape_the_sdk_reads_is_read_the_same(utc: None, shape: Any) -> None:
    body = json.dumps(shape).encode()
    same_key(parse_key(body), internal.StsAccessor._process_credential(body))


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "the answer is not JSON"),
    (b"[]", "the answer is not a JSON object"),
    (b'{"credential": "x"}', "'credential' is not a JSON object"),
    (b'{"credential": {}}', "no 'access' / 'accessKeyId' / 'access_key_id' in the answer"),
    (json.dumps({k: v for k, v in KEY.items() if k != "secret"}).encode(),
     "no 'secret' / 'secretAccessKey' / 'secret_access_key' in the answer"),
    (json.dumps({k: v for k, v in KEY.items() if k != "securitytoken"}).encode(),
     "no 'securitytoken' / 'securityToken' / 'security_token' in the answer"),
    (json.dumps({**KEY, "expires_at": "2031-10-17T18:51:25Z"}).encode(),
     "the expiry is not a time like 2022-10-17T18:51:25.231000Z (20 characters)"),
    (json.dumps({**KEY, "access": 7}).encode(),
     "'access' is not a string of at most 16384 characters"),
])  # fmt: skip
def test_a_malformed_answer_is_one_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(KeyAnswerError) as caught:
        parse_key(body)
    assert str(caught.value) == message
    assert KEY["secret"] not in str(caught.value)


async def test_a_request_signed_with_a_fetched_key_verifies_with_the_sdk_signer(
    capture: tuple[sdk.CaptureServer, str],
) -> None:
    server, url = capture
    server.answers["/meta-data/latest/api/token"] = (200, b"session-token-1", {})
    server.answers["/openstack/latest/securitykey"] = (200, {"credential": KEY}, {})
    target = Target(TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1"), url, MetadataSource(url))
    async with aiohttp.ClientSession() as session:
        harness = Harness(session)
        # The capture server's answer is no image server: only the request matters.
        with contextlib.suppress(ApiError):
            await harness.client.fetch(target)
        await harness.client.close()
    signed = [c for c in server.take() if c.path.startswith("/v1/")]
    assert len(signed) == 1 and signed[0].header("X-Security-Token") == KEY["securitytoken"]
    assert sdk.verify_with_sdk_signer(signed[0], KEY["access"], KEY["secret"])
    assert sorted(harness.secrets) == sorted(
        ["session-token-1", KEY["secret"], KEY["securitytoken"]]
    )
