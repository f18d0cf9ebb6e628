"""Reading the cloud's answers: parsed against their models, list items one by one,
IDs checked, and every error built from an answer cleared of known secrets.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from exporter.cloud.errors import ApiError, ErrorKind, snippet
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.models import ListModel
from exporter.cloud.sanitize import clean
from exporter.cloud.transport import Response
from exporter.support.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

_P = TypeVar("_P", bound=BaseModel)


class AnswerReader:
    """Turns HTTP answers into models, or into the ApiError that says what is wrong."""

    def __init__(self, metrics: ApiMetrics, redact: Callable[[str], str] = str) -> None:
        self._metrics = metrics
        # Gateways have been seen quoting credentials back: every error built from an
        # answer passes through this before it is stored, shown or written.
        self.redact = redact
        self._warn = RateLimitedLog(log).emit

    def redacted(self, exc: ApiError) -> ApiError:
        """``exc`` with every known secret taken out of each string the answer gave it (its
        message, error code and request ID: a gateway may echo a token in any of them)."""
        detail, code, request_id = (
            self.redact(s) if s else s for s in (exc.detail, exc.error_code, exc.request_id)
        )
        if (detail, code, request_id) == (exc.detail, exc.error_code, exc.request_id):
            return exc
        return ApiError(
            exc.kind, detail or "", status=exc.status, error_code=code,
            request_id=request_id, retry_after=exc.retry_after,
        )  # fmt: skip

    def parse(self, api: str, resp: Response, model: type[_P]) -> _P:
        try:
            return model.model_validate_json(resp.body)
        except ValidationError as exc:
            if issubclass(model, ListModel):
                salvaged = self.salvage(resp, model, exc)
                if salvaged is not None:
                    return salvaged
            content_type = clean(resp.headers.get("Content-Type", "no content type"), 100)
            raise self.invalid(
                api,
                resp,
                f"answer is not the expected JSON object ({content_type}; "
                f"{exc.error_count()} problem(s)): {snippet(resp.body) or 'empty body'}",
            ) from None

    def salvage(self, resp: Response, model: type[_P], error: ValidationError) -> _P | None:
        """A list answer whose envelope is sound but some items are not: each bad item
        becomes an empty one (it keeps its position, which paging needs, and is then
        skipped and counted for lack of an ID). None when the envelope itself is wrong."""
        assert issubclass(model, ListModel)
        if any(e["type"] == "too_long" for e in error.errors(include_input=False)):
            return None  # more items than asked for: not worth reading one by one
        try:
            raw = json.loads(resp.body)  # unlike pydantic's parser, takes lone surrogates
        except (ValueError, RecursionError):
            return None
        items = raw.get(model.ITEMS) if isinstance(raw, dict) else None
        if not isinstance(items, list):
            return None
        kept = []
        for item in items:
            try:
                kept.append(model.ITEM.model_validate(item))
            except ValidationError:
                kept.append(model.ITEM())
        try:
            return model.model_validate({**raw, model.ITEMS: kept})
        except ValidationError:
            return None

    def page_error(self, api: str, count: int, offset: int, items: list[Any]) -> ApiError:
        """A page that contradicts its own total: neither is believed."""
        self._metrics.error(api, ErrorKind.INVALID_RESPONSE.value)
        return ApiError(
            ErrorKind.INVALID_RESPONSE,
            f"the page at offset {offset} holds {len(items)} items but the list counts {count}",
        )

    def usable_id(self, oid: str | None, shape: re.Pattern[str], api: str) -> bool:
        """Whether a listed object's ID has its documented shape; one that has not is
        skipped and counted, never put into a URL or a label."""
        if oid and shape.fullmatch(oid):
            return True
        self.skipped(api, 1)
        return False

    def skipped(self, api: str, n: int) -> None:
        """Count items of a list left out, with a warning now and then, not one per item."""
        if n:
            self._metrics.invalid(api, n)
            self._warn(
                f"skipped:{api}",
                "%d item(s) of a %s answer are not what the API documents; skipped",
                n,
                api,
            )

    def invalid(self, api: str, resp: Response, detail: str) -> ApiError:
        self._metrics.error(api, ErrorKind.INVALID_RESPONSE.value)
        return ApiError(
            ErrorKind.INVALID_RESPONSE,
            self.redact(detail),
            status=resp.status,
            request_id=resp.request_id,
        )
