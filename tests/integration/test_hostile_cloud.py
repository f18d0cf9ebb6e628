"""What a hostile or broken cloud may send, and what the exporter makes of it.

Each answer comes from a raw loopback server, byte for byte, so that encodings, headers
and bodies no HTTP library would produce can be sent.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from exporter.cloud import convert
from exporter.cloud.errors import ApiError
from exporter.cloud.metrics import MAX_ERROR_CODES, ApiMetrics
from exporter.cloud.models import ImageServerModel
from exporter.cloud.transport import RetryPolicy
from exporter.runtime import Exporter, ListenAddress
from tests.harness import SRV, Harness, server_target
from tests.helpers import RawHttpServer, image_server_body, settings

BOMB = gzip.compress(bytes(64 << 20), compresslevel=9)  # 64 MiB of zeros in about 64 KiB
DEEP = b"[" * 200_000 + b"]" * 200_000
JSON = {"Content-Type": b"application/json"}


@dataclass(frozen=True)
class Answer:
    name: str
    status: str
    headers: dict[str, bytes]
    body: bytes
    label: str  # the error_code label it must be counted under
    words: str  # what the error message must say


ANSWERS = [
    Answer("gzip bomb as a 200", "200 OK", {**JSON, "Content-Encoding": b"gzip"}, BOMB,
           "invalid_response", "larger than"),
    Answer("gzip bomb as a 500", "500 Internal Server Error", {**JSON, "Content-Encoding": b"gzip"},
           BOMB, "invalid_response", "larger than"),
    Answer("error body nested 200,000 deep", "500 Internal Server Error", JSON, DEEP,
           "invalid_response", "nested too deeply"),
    Answer("success body nested 200,000 deep", "200 OK", JSON, b'{"id":' + DEEP + b"}",
           "invalid_response", "not the expected JSON"),
    Answer("redirect", "302 Found", {"Location": b"http://127.0.0.1:1/elsewhere"}, b"",
           "invalid_response", "redirect"),
    Answer("empty object as a 200", "200 OK", JSON, b"{}", "invalid_response", "does not describe"),
    Answer("error envelope as a 200", "200 OK", JSON,
           b'{"error_code": "WKS.0001", "error_msg": "no"}', "invalid_response", "does not describe"),
    Answer("another object as a 200", "200 OK", JSON,
           json.dumps(image_server_body("srv-other")).encode(), "invalid_response", "srv-other"),
    Answer("lone surrogate in the message, non-UTF-8 request id", "500 Internal Server Error",
           {**JSON, "X-Request-Id": b"req-\xff\xfe-1"},
           b'{"error_code": "WKS.0500", "error_msg": "broken \\ud800 here"}', "WKS.0500",
           "broken ? here"),
]  # fmt: skip


@pytest.fixture
async def raw() -> AsyncIterator[RawHttpServer]:
    async with RawHttpServer() as server:
        yield server


@pytest.mark.parametrize("answer", ANSWERS, ids=[a.name for a in ANSWERS])
async def test_hostile_answer_is_a_clear_counted_error(raw: RawHttpServer, answer: Answer) -> None:
    raw.answer(answer.status, answer.headers, answer.body)
    async with aiohttp.ClientSession() as session:
        h = Harness(session, policy=RetryPolicy(retries=0))
        with pytest.raises(ApiError) as info:
            await h.client.fetch(server_target(raw.url))
    err = info.value
    text = str(err)
    text.encode("utf-8")  # printable everywhere: pages, logs, JSON
    assert answer.words in text
    assert err.label == answer.label
    assert h.errors("image_server", answer.label) == 1
    assert len(text) < 2048


async def test_one_target_with_unencodable_strings_leaves_the_page_and_metrics_up(
    raw: RawHttpServer,
) -> None:
    bad = ANSWERS[-1]
    raw.answer(bad.status, bad.headers, bad.body)
    e = Exporter(settings(raw.url, [], [SRV]), retry_policy=RetryPolicy(retries=0))
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        await e.run_cycle()
        base = f"http://127.0.0.1:{e.addresses[0][1]}"
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/") as r:
                page = await r.text()
                assert r.status == 200
            async with s.get(base + "/metrics") as r:
                assert r.status == 200
        assert "broken ? here" in page and "req-??-1" in page
    finally:
        await e.stop()


def test_error_codes_are_bounded_per_api() -> None:
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    for n in range(MAX_ERROR_CODES + 50):
        metrics.error("image_server", f"APIGW.{n:04d}")
    metrics.error("image_server", "APIGW.0000")  # an early code keeps its own series
    series = {
        s.labels["error_code"]: s.value
        for m in registry.collect()
        if m.name == "huaweicloud_image_exporter_api_errors"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert len(series) == MAX_ERROR_CODES + 1
    assert series["other"] == 50 and series["APIGW.0000"] == 2


def test_account_types_are_a_known_set_plus_other() -> None:
    accounts = [{"account": str(n), "account_type": f"KIND{n}"} for n in range(20_000)]
    accounts += [{"account": "u", "account_type": "USER"}, {"account": "x"}]
    model = ImageServerModel.model_validate(image_server_body("s", authorize_accounts=accounts))
    assert dict(convert.image_server(model).accounts) == {
        "USER": 1, "USER_GROUP": 0, "other": 20_000, "": 1,
    }  # fmt: skip


def test_label_values_from_the_cloud_are_bounded() -> None:
    model = ImageServerModel.model_validate(image_server_body("s", name="n" * 100_000))
    assert len(convert.image_server(model).name) == 1024
