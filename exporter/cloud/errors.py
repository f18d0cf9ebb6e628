"""One typed error for every way a Huawei Cloud API call can fail."""

from __future__ import annotations

import enum
import json
import re
from typing import Any

from exporter.cloud.sanitize import clean, clean_optional

_CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KEY_PAIRS = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))
_SNIPPET = 160


class ErrorKind(enum.StrEnum):
    """Why a call failed; the non-HTTP kinds are also ``error_code`` label values."""

    HTTP = "http"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    INVALID_RESPONSE = "invalid_response"
    CREDENTIALS = "credentials"  # no usable temporary key (its source failed, or it expired)


class ApiError(Exception):
    """A failed call: HTTP status, Huawei error code and message, and the gateway's request id."""

    def __init__(
        self,
        kind: ErrorKind,
        detail: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        elif self.kind is not ErrorKind.HTTP:
            parts.append(self.kind.value)
        if self.error_code:
            parts.append(self.error_code)
        text = " ".join(parts)
        text = f"{text}: {self.detail}" if text else self.detail
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    @property
    def forbidden(self) -> bool:
        """The credentials may not make this call (HTTP 403): a permission is missing."""
        return self.status == 403

    @property
    def not_offered(self) -> bool:
        """The gateway does not know this API here (404 APIGW.0101): the service is not
        offered in the project's region, or the endpoint is wrong."""
        return self.status == 404 and (self.error_code or "").startswith(("APIGW.", "APIG."))

    @property
    def label(self) -> str:
        """The ``error_code`` label: Huawei's code if it looks like one, else the failure kind."""
        if self.error_code and _CODE_RE.match(self.error_code):
            return self.error_code
        if self.kind is ErrorKind.HTTP and self.status is not None:
            return f"http_{self.status}"
        return self.kind.value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _find_pair(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    for code_key, msg_key in _KEY_PAIRS:
        code, msg = _text(obj.get(code_key)), _text(obj.get(msg_key))
        if code or msg:
            return code, msg
    return None, None


def snippet(body: bytes) -> str:
    """A short, printable excerpt of a body for an error message."""
    text = body[:_SNIPPET].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text + ("..." if len(body) > _SNIPPET else "")


class TooDeep(ValueError):
    """A JSON body nested deeper than Python's parser can follow."""


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """``(error_code, error_msg)`` from any of the body shapes the APIs and gateway send.

    Raises TooDeep for a body nested beyond the parser's recursion limit."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise TooDeep from None
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code, msg = _find_pair(data)
    if code or msg:
        return code, msg
    for value in data.values():
        if isinstance(value, dict):
            code, msg = _find_pair(value)
            if code or msg:
                return code, msg
    return None, None


def http_error(
    status: int, body: bytes, request_id: str | None, retry_after: float | None = None
) -> ApiError:
    """Build the error for a non-2xx answer, with a useful message even for a body nobody parses."""
    try:
        code, msg = parse_error_body(body)
    except TooDeep:
        return ApiError(
            ErrorKind.INVALID_RESPONSE,
            "error body is JSON nested too deeply to read",
            status=status,
            request_id=request_id,
            retry_after=retry_after,
        )
    msg = clean(msg) if msg is not None else (snippet(body) or "empty response body")
    return ApiError(
        ErrorKind.HTTP,
        msg,
        status=status,
        error_code=clean_optional(code, 64),
        request_id=request_id,
        retry_after=retry_after,
    )
