"""AK/SK signing: the published vectors, the official SDK signer as oracle, and verification."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.cloud import signing

# Importing the SDK writes ~/.huaweicloud/application_id; keep that out of the real home.
os.environ.setdefault("HOME", tempfile.mkdtemp())
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

VECTOR_HOST = "service.endpoint.myhuaweicloud.com"


def _signature(auth: str) -> str:
    return auth.rsplit("Signature=", 1)[1]


def test_vector_get() -> None:
    headers = signing.sign(
        "GET", VECTOR_HOST, "/resources", [("size", "1")],
        {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "x"}, b"", "AccessKey", "SecretKey",
    )  # fmt: skip
    assert "SignedHeaders=host;x-sdk-date," in headers["Authorization"]
    assert _signature(headers["Authorization"]) == (
        "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )


def test_vector_post_with_body() -> None:
    headers = signing.sign(
        "POST", VECTOR_HOST, "/resources", [("size", "1")],
        {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "x"},
        b'{"name":"test","id":1}', "AccessKey", "SecretKey",
    )  # fmt: skip
    assert _signature(headers["Authorization"]) == (
        "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"
    )


def test_vector_content_type_and_project_path() -> None:
    headers = signing.sign(
        "GET", "service.region.example.com", "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
        [("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")],
        {"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z"},
        b"", "AK", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
    )  # fmt: skip
    assert "SignedHeaders=content-type;host;x-sdk-date," in headers["Authorization"]
    assert _signature(headers["Authorization"]) == (
        "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


def test_vector_query_encoding() -> None:
    pairs = [("test", "一 (&=?!#%.*)"), ("path", "/tmp/123"), ("multi", "3"), ("multi", "1"),
             ("multi", "2"), ("limit", "1"), ("enable", "true")]  # fmt: skip
    assert signing.canonical_query(pairs) == (
        "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123"
        "&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
    )


def test_canonical_uri_always_ends_with_slash() -> None:
    assert signing.canonical_uri("/v1/p/image-servers/x") == "/v1/p/image-servers/x/"
    assert signing.canonical_uri("/a%20b/") == "/a%20b/"


def test_date_is_added_when_missing() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = signing.sign("GET", "h", "/", [], {}, b"", "ak", "sk", now=now)
    assert headers["X-Sdk-Date"] == "20260102T030405Z"
    assert headers["Host"] == "h"


def test_verify_accepts_own_signature_and_rejects_tampering() -> None:
    headers = signing.sign(
        "GET", "h:8080", "/v1/p/x", [("a", "1")], {"X-Project-Id": "p"}, b"", "ak", "sk"
    )
    auth = signing.parse_authorization(headers["Authorization"])
    assert auth is not None
    assert signing.verify(auth, "sk", "GET", "/v1/p/x", [("a", "1")], headers, b"")
    assert not signing.verify(auth, "other", "GET", "/v1/p/x", [("a", "1")], headers, b"")
    assert not signing.verify(auth, "sk", "GET", "/v1/p/y", [("a", "1")], headers, b"")
    tampered = {**headers, "X-Project-Id": "q"}
    assert not signing.verify(auth, "sk", "GET", "/v1/p/x", [("a", "1")], tampered, b"")


@pytest.mark.parametrize("header", ["", "Bearer x", "SDK-HMAC-SHA256 Access=a"])
def test_parse_authorization_rejects_other_schemes(header: str) -> None:
    assert signing.parse_authorization(header) is None


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=12
)
_segment = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/?#%"
    ),
    min_size=1,
    max_size=10,
)
_header_name = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=12,
).filter(lambda n: n.lower() not in ("host", "x-sdk-date", "authorization", "content-type"))
_header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=20
)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    segments=st.lists(_segment, min_size=1, max_size=5),
    query=st.lists(st.tuples(_text, _text), max_size=5),
    headers=st.dictionaries(_header_name, _header_value, max_size=5),
    body=st.binary(max_size=64),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)),
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_matches_official_sdk_signer(
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    when: datetime,
    port: int | None,
) -> None:
    # Names that differ only in case would be one header on the wire; keep one of each.
    unique = {name.lower(): (name, value) for name, value in headers.items()}
    headers = dict(unique.values())
    headers["Content-Type"] = "application/json"
    headers["X-Sdk-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
    host = "svc.example.com" + (f":{port}" if port else "")
    path = "/" + "/".join(segments)

    ours = signing.sign(method, host, path, query, headers, body, "AK1", "SK1")

    request = SdkRequest(
        method=method, schema="https", host=host, resource_path=path,
        query_params=list(query), header_params=dict(headers), body=body,
    )  # fmt: skip
    Signer(SimpleNamespace(ak="AK1", sk="SK1")).sign(request)
    assert ours["Authorization"] == request.header_params["Authorization"]
