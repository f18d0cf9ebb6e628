"""What every source's fetch has in common: one call through the transport (its timeouts,
retries, body cap and metrics), its failure said as a credentials error, and the key read
from the answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from yarl import URL

from exporter.cloud.errors import ApiError, ErrorKind, snippet
from exporter.cloud.keys.answer import KeyAnswerError, TemporaryKey, parse_key
from exporter.cloud.transport import Response, Transport

_S = TypeVar("_S")

MAX_KEY_ANSWER = 256 << 10  # a key answer is a few kilobytes
MAX_TOKEN_FILE = 64 << 10  # a projected service account token is about a kilobyte
JSON_UTF8 = "application/json;charset=UTF-8"


def failed(source: str, what: str, exc: ApiError | None = None) -> ApiError:
    """A credentials error: ``source`` could not give a key because of ``what``."""
    detail = f"{source}: {what}" + (f" ({exc})" if exc is not None else "")
    return ApiError(
        ErrorKind.CREDENTIALS, detail,
        status=exc.status if exc else None, request_id=exc.request_id if exc else None,
    )  # fmt: skip


def read_token(source: str, path: str, on_secret: Callable[[str], None]) -> str:
    """A token file's content, stripped (read at every fetch: the kubelet or an OIDC agent
    rotates it in place); it joins the redactor before anything else sees it."""
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_TOKEN_FILE + 1)
    except OSError as exc:
        raise failed(source, f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TOKEN_FILE:
        raise failed(source, f"the token file {path} is over {MAX_TOKEN_FILE} bytes")
    token = data.decode(errors="replace").strip()
    if not token:
        raise failed(source, f"the token file {path} is empty")
    on_secret(token)
    return token


async def call(
    transport: Transport,
    api: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: object = None,
    deadline: float | None = None,
) -> Response:
    """One request of a credential source; ``body`` is sent as JSON (the SDK's own
    encoding, so that the two send the same bytes) unless it is None."""
    data = json.dumps(body).encode() if body is not None else b""

    async def fixed() -> Mapping[str, str]:
        return headers

    return await transport.request(
        api, method, URL(url, encoded=True), fixed, body=data, deadline=deadline,
        max_body=MAX_KEY_ANSWER,
    )  # fmt: skip


def key_from(source: str, resp: Response, on_secret: Callable[[str], None]) -> TemporaryKey:
    """The key of a successful answer; a failed or unreadable one is a credentials error.
    The key's secrets join the redactor the moment they are read."""
    if resp.error is not None or resp.status >= 400:
        raise failed(source, f"answered HTTP {resp.status}: {snippet(resp.body)}", resp.error)
    try:
        key = parse_key(resp.body)
    except KeyAnswerError as exc:
        raise failed(source, f"the answer holds no usable key: {exc}") from None
    for secret in key.secrets:
        on_secret(secret)
    return key


class SourceKeys(Generic[_S]):
    """A fetcher of keys from one configured source, through the transport; every secret
    it reads goes to ``on_secret``."""

    def __init__(self, source: _S, transport: Transport, on_secret: Callable[[str], None]) -> None:
        self._source = source
        self._transport = transport
        self._on_secret = on_secret
