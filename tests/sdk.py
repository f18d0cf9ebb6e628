"""The official Huawei Cloud SDK as a test oracle: its clients, run against a loopback
capture server, say what a request to each API must look like; its response models say
what an answer may hold.

The SDK is synchronous (``requests``): its calls run in a worker thread while the test's
event loop serves the capture server.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from aiohttp import web


@contextmanager
def _home_elsewhere() -> Iterator[None]:
    # Importing the SDK writes ~/.huaweicloud/application_id: not into the real home.
    old = os.environ.get("HOME")
    os.environ["HOME"] = tempfile.mkdtemp(prefix="sdk-home-")
    try:
        yield
    finally:
        if old is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = old


with _home_elsewhere():
    import huaweicloudsdkiam.v3 as iam
    import huaweicloudsdkmodelarts.v1 as modelarts
    import huaweicloudsdkworkspaceapp.v1 as workspaceapp
    from huaweicloudsdkcore.auth import internal
    from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
    from huaweicloudsdkcore.exceptions.exception_handler import DefaultExceptionHandler
    from huaweicloudsdkcore.http.http_client import HttpClient
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkcore.region.region import Region
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer
    from huaweicloudsdkcore.utils.http_utils import sanitize_for_serialization

__all__ = [
    "BasicCredentials", "DefaultExceptionHandler", "GlobalCredentials", "HttpClient", "Region",
    "SdkRequest", "Signer", "iam", "internal",
    "modelarts", "sanitize_for_serialization", "sdk_version", "workspaceapp",
]  # fmt: skip

PACKAGES: tuple[ModuleType, ...] = (workspaceapp, modelarts, iam)
sdk_version = importlib.metadata.version("huaweicloudsdkcore")


@dataclass(frozen=True)
class Captured:
    """One request as it arrived: the bytes of its path and query, and its headers."""

    method: str
    path: str  # raw, as sent
    query: tuple[tuple[str, str], ...]  # raw pairs, as sent, sorted
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name."""
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    @property
    def decoded_query(self) -> list[tuple[str, str]]:
        """The query pairs as a server reads them."""
        return [(unquote(k), unquote(v)) for k, v in self.query]


Answer = tuple[int, dict[str, Any] | bytes, dict[str, str]]  # status, JSON or raw body, headers
# The default answer: an empty list in the shape of every list API (each reads its own keys).
EMPTY_LIST: dict[str, Any] = {"count": 0, "items": [], "data": [], "projects": [], "domains": []}


@dataclass
class CaptureServer:
    """Records every request and answers from ``answers`` by path (default: EMPTY_LIST)."""

    answers: dict[str, Answer] = field(default_factory=dict)
    captured: list[Captured] = field(default_factory=list)

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path, _, raw_query = request.raw_path.partition("?")
        pairs = tuple(sorted(tuple(p.split("=", 1)) for p in raw_query.split("&") if p))
        self.captured.append(
            Captured(request.method, raw_path, pairs, dict(request.headers), await request.read())  # type: ignore[arg-type]
        )
        status, body, headers = self.answers.get(request.path, (200, EMPTY_LIST, {}))
        if isinstance(body, bytes):  # an answer that is not JSON, as it is
            return web.Response(body=body, status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def take(self) -> list[Captured]:
        """What was captured since the last call."""
        out, self.captured = self.captured, []
        return out


def http_config() -> Any:
    """No retries, short timeouts: a test's capture server answers at once."""
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    return config


def project_client(package: ModuleType, name: str, url: str, project_id: str, ak: str,
                   sk: str, security_token: str | None = None) -> Any:  # fmt: skip
    """An SDK service client for one project at ``url``."""
    credentials = BasicCredentials(ak, sk, project_id)
    if security_token:
        credentials = credentials.with_security_token(security_token)
    builder = getattr(package, name).new_builder()
    return (
        builder.with_credentials(credentials).with_endpoints([url])
        .with_http_config(http_config()).build()
    )  # fmt: skip


def iam_client(url: str, ak: str, sk: str, domain_id: str | None = None) -> Any:
    """An SDK IAM client at ``url``; without ``domain_id`` it asks IAM for it, as the SDK
    does for a client built with a region."""
    credentials = GlobalCredentials(ak, sk, domain_id).with_iam_endpoint(url)
    return (
        iam.IamClient.new_builder().with_credentials(credentials)
        .with_region(Region("test-region", url)).with_http_config(http_config()).build()
    )  # fmt: skip


def verify_with_sdk_signer(request: Captured, ak: str, sk: str) -> bool:
    """Whether the SDK's own signer, given the same request and date, writes the same
    Authorization header as the one that arrived."""
    auth = request.header("Authorization") or ""
    signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";") if auth else []
    headers = {k: v for k, v in request.headers.items() if k.lower() in signed}
    sdk_request = SdkRequest(
        method=request.method, schema="http", host=request.header("Host"),
        resource_path=unquote(request.path), query_params=request.decoded_query,
        header_params=headers, body=request.body.decode(),
    )  # fmt: skip
    Signer(_Keys(ak, sk)).sign(sdk_request)
    return bool(sdk_request.header_params["Authorization"] == auth)


@dataclass(frozen=True)
class _Keys:
    ak: str
    sk: str


# --- response models -------------------------------------------------------------------


def model_class(type_name: str) -> type[Any] | None:
    """The SDK model class of a type name in ``openapi_types`` (None for plain types)."""
    for package in PACKAGES:
        klass = getattr(package, type_name, None)
        if isinstance(klass, type):
            return klass
    return None


def enum_values(klass: type[Any]) -> list[str]:
    """The values of one of the SDK's enum classes (a class of upper-case constants)."""
    return [v for k, v in vars(klass).items() if k.isupper() and isinstance(v, str)]


def is_enum(klass: type[Any] | None) -> bool:
    """Whether an SDK model class is one of its string enums."""
    return klass is not None and not klass.openapi_types and bool(enum_values(klass))


def filled(klass: type[Any], choose: Callable[[type[Any], str], Any] | None = None) -> Any:
    """An instance of an SDK model with every field set (``choose(klass, field)`` may pick a
    value; enum-typed fields otherwise take the enum's first value)."""
    values: dict[str, Any] = {}
    for name, type_name in klass.openapi_types.items():
        picked = choose(klass, name) if choose else None
        values[name] = picked if picked is not None else _value(type_name, name, choose)
    return klass(**values)


def _value(type_name: str, name: str, choose: Callable[[type[Any], str], Any] | None) -> Any:
    if type_name.startswith("list["):
        return [_value(type_name[5:-1], name, choose)]
    if type_name.startswith("dict("):
        return {"k": "v"}
    plain: dict[str, Any] = {
        "str": f"{name}-value", "int": 7, "bool": True, "float": 1.5, "object": {"k": "v"},
        "datetime": datetime.datetime(2022, 3, 7, 10, 40, 43, 858000, tzinfo=datetime.UTC),
        "date": datetime.date(2022, 3, 7),
    }  # fmt: skip
    if type_name in plain:
        return plain[type_name]
    klass = model_class(type_name)
    assert klass is not None, f"unknown SDK type {type_name}"
    if is_enum(klass):
        return enum_values(klass)[0]
    return filled(klass, choose)


def wire_json(model: Any) -> dict[str, Any]:
    """A model as the API would send it, through the SDK's own serializer."""
    return json.loads(json.dumps(sanitize_for_serialization(model)))  # type: ignore[no-any-return]


def unknown_fields(body: Any, type_name: str, where: str = "") -> list[str]:
    """Fields of an answer the SDK model ``type_name`` does not know, and enum values it
    does not allow (the literal "null" is one of them where documented)."""
    if body is None:
        return []
    if type_name.startswith("list["):
        if not isinstance(body, list):
            return [f"{where}: a list expected"]
        return [p for n, item in enumerate(body)
                for p in unknown_fields(item, type_name[5:-1], f"{where}[{n}]")]  # fmt: skip
    klass = model_class(type_name)
    if klass is None:
        return []
    if is_enum(klass):
        return [] if body in enum_values(klass) else [f"{where}: {body!r} not in {type_name}"]
    if not isinstance(body, dict):
        return [f"{where}: an object expected"]
    wire_names = {v: k for k, v in klass.attribute_map.items()}
    problems = []
    for key, value in body.items():
        attr = wire_names.get(key)
        if attr is None:
            problems.append(f"{where}.{key}: not in {type_name}")
        else:
            problems += unknown_fields(value, klass.openapi_types[attr], f"{where}.{key}")
    return problems
