"""Logging in Prometheus' styles (logfmt or JSON), with secrets scrubbed from every line.

Secrets are kept out of log calls by design; the redacting handler is the second line of
defence, applied to the fully formatted line so tracebacks are covered too.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import deque
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "<redacted>"
_MIN_SECRET = 6  # shorter values would garble ordinary words
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
LEVELS = ("debug", "info", "warn", "error")


class Redactor:
    """The set of values that must never be printed."""

    def __init__(self) -> None:
        self._static: frozenset[str] = frozenset()
        self._dynamic: deque[str] = deque(maxlen=4096)

    def set_secrets(self, secrets: tuple[str, ...]) -> None:
        """Replace the configured secrets (after a load or reload)."""
        self._static = frozenset(s for s in secrets if len(s) >= _MIN_SECRET)

    def add(self, secret: str) -> None:
        """Add a value learnt at run time, such as an IAM token."""
        if len(secret) >= _MIN_SECRET:
            self._dynamic.append(secret)

    def __call__(self, text: str) -> str:
        for secret in (*self._static, *self._dynamic):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


class _StructuredFormatter(logging.Formatter):
    """Builds the fields of a line; subclasses say how to write them."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line; an exception (if any) goes in an ``err`` field."""
        fields: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            fields["err"] = self.formatException(record.exc_info)
        return self.write(fields)

    def write(self, fields: dict[str, object]) -> str:
        """Serialise the fields."""
        raise NotImplementedError


class LogfmtFormatter(_StructuredFormatter):
    """``ts=... level=info logger=... msg="..." key=value``."""

    def write(self, fields: dict[str, object]) -> str:
        """Space-separated key=value pairs, values quoted when needed."""
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


class JsonFormatter(_StructuredFormatter):
    """One JSON object per line."""

    def write(self, fields: dict[str, object]) -> str:
        """A JSON object."""
        return json.dumps(fields, default=str, ensure_ascii=False)


class RedactingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that scrubs secrets from each formatted line."""

    def __init__(self, redactor: Redactor, stream: TextIO) -> None:
        super().__init__(stream)
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        return self._redact(super().format(record))


class Without(logging.Filter):
    """Drops records whose message contains any of ``fragments``."""

    def __init__(self, *fragments: str) -> None:
        super().__init__()
        self._fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record to drop."""
        text = str(record.msg)
        return not any(f in text for f in self._fragments)


class EveryMinute(logging.Filter):
    """Lets a message that starts with ``prefix`` through once per ``interval`` seconds.

    asyncio logs "socket.accept() out of system resource" for every failed accept, and
    aiohttp a traceback for every malformed request: under a flood that is megabytes a
    minute, and one line says it all."""

    def __init__(self, prefix: str, interval: float = 60.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._interval = interval
        self._last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within the interval."""
        if not str(record.msg).startswith(self._prefix):
            return True
        if record.created - self._last < self._interval:
            return False
        self._last = record.created
        return True


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> Redactor:
    """Configure the root logger; return the redactor to feed secrets into."""
    redactor = Redactor()
    handler = RedactingHandler(redactor, stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if level == "warn" else getattr(logging, level.upper()))
    # The scheduler logs every job run at INFO; only its problems are worth a line. A run
    # skipped or missed because the previous cycle overran is reported by the poller, once
    # and with its reason, instead of by APScheduler every interval.
    scheduler_log = logging.getLogger("apscheduler")
    scheduler_log.setLevel(max(root.level, logging.WARNING))
    for name in ("apscheduler.scheduler", "apscheduler.executors.default"):
        logging.getLogger(name).filters[:] = [Without("maximum number of running instances",
                                                       "was missed by")]  # fmt: skip
    # Lines that a flood of connections or malformed requests would repeat without end.
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.filters[:] = [EveryMinute("socket.accept() out of system resource")]
    logging.getLogger("aiohttp.server").filters[:] = [EveryMinute("Error handling request")]
    return redactor
