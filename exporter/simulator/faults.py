"""The ways the simulated cloud misbehaves, and the error bodies it sends."""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web


class FaultKind(enum.Enum):
    """Ways the simulator can misbehave for one object (or for IAM)."""

    STATUS = "status"  # an error status with an error body in one of the known shapes
    THROTTLE = "throttle"  # 429 APIGW.0308, with Retry-After if given
    SLOW = "slow"  # answer correctly after ``delay`` seconds
    HANG = "hang"  # never answer (until ``delay`` passes, which should exceed the timeout)
    MALFORMED = "malformed"  # 200 with truncated JSON and a matching Content-Length
    TRUNCATED = "truncated"  # 200 whose connection closes before the promised body ends
    HTML = "html"  # 200 with an HTML error page
    HUGE = "huge"  # 200 with a body of several MiB
    RESET = "reset"  # close the connection without answering
    BODY = "body"  # 200 with exactly ``body``: hostile answers, byte for byte


class BodyShape(enum.Enum):
    """The error body variants seen from Huawei Cloud services and gateways."""

    STANDARD = "standard"  # {"error_code", "error_msg"}
    CAMEL = "camel"  # {"errorCode", "errorMsg"}
    CODE_MESSAGE = "code_message"  # {"code", "message"}
    NESTED = "nested"  # {"error": {"code", "message"}}
    TEXT = "text"  # not JSON at all


@dataclass
class Fault:
    """A misbehaviour; ``times`` limits it to the next N requests (None: until removed)."""

    kind: FaultKind
    status: int = 500
    error_code: str = "ModelArts.0001"
    shape: BodyShape = BodyShape.STANDARD
    delay: float = 0.0
    retry_after: str | None = None
    times: int | None = None
    probability: float = 1.0
    body: bytes = b""
    message: str = "injected failure"  # the error message of a STATUS fault
    request_id: str | None = None  # the X-Request-Id of a STATUS fault (else a fresh one)


def error_body(shape: BodyShape, code: str, message: str) -> bytes:
    """Encode an error in one of the body shapes the client must understand."""
    bodies: dict[BodyShape, Any] = {
        BodyShape.STANDARD: {"error_code": code, "error_msg": message},
        BodyShape.CAMEL: {"errorCode": code, "errorMsg": message},
        BodyShape.CODE_MESSAGE: {"code": code, "message": message},
        BodyShape.NESTED: {"error": {"code": code, "message": message}},
    }
    if shape is BodyShape.TEXT:
        return f"{code} {message}".encode()
    return json.dumps(bodies[shape]).encode()


async def misbehave(
    request: web.Request, fault: Fault, body: dict[str, Any] | None
) -> web.StreamResponse:
    """The answer a fault gives instead of the right one (``body``: the object, if any)."""
    kind = fault.kind
    if kind is FaultKind.STATUS:
        resp = json_response(fault.status, error_body(fault.shape, fault.error_code, fault.message))
        if fault.request_id is not None:
            resp.headers["X-Request-Id"] = fault.request_id
        return resp
    if kind is FaultKind.THROTTLE:
        resp = json_response(
            429,
            error_body(
                fault.shape,
                "APIGW.0308",
                "The throttling threshold has been reached: policy user over ratelimit,"
                "limit:20,time:1 minute",
            ),
        )
        if fault.retry_after is not None:
            resp.headers["Retry-After"] = fault.retry_after
        return resp
    if kind in (FaultKind.SLOW, FaultKind.HANG):
        await asyncio.sleep(fault.delay)
        if body is None:
            return json_response(404, error_body(BodyShape.STANDARD, "ModelArts.6404", "not found"))
        return json_response(200, json.dumps(body).encode())
    if kind is FaultKind.BODY:
        return json_response(200, fault.body)
    if kind is FaultKind.MALFORMED:
        return json_response(200, b'{"id": "x", "status": "ACT')
    if kind is FaultKind.HTML:
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        return web.Response(status=200, body=page, content_type="text/html")
    if kind is FaultKind.HUGE:
        return json_response(200, b'{"name": "' + b"x" * (4 << 20) + b'"}')
    return await _break_connection(request, truncated=kind is FaultKind.TRUNCATED)


def json_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


async def _break_connection(request: web.Request, *, truncated: bool) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    transport = request.transport
    if truncated:
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b'{"id": "truncated", "status": "AC')
    if transport is not None:
        transport.abort()
    return resp
