"""What went wrong, in one place: an exception turned into the reason every kind of poll
(detail calls, sweeps, project lists, build jobs) stores, shows and counts.

A failure of the cloud is an ApiError: its text and its ``error_code`` label. Anything else
is a bug in the exporter: it is logged with its traceback, and stored as "internal".
"""

from __future__ import annotations

import logging

from exporter.cloud.errors import ApiError

log = logging.getLogger(__name__)

INTERNAL = "internal"


def reason(exc: BaseException, doing: str) -> tuple[str, str]:
    """``(message, label)`` of a failure while ``doing`` something ("polling image_server
    p/x"); a bug's traceback is logged here, once, with what it interrupted."""
    if isinstance(exc, ApiError):
        return str(exc), exc.label
    log.error("unexpected error %s", doing, exc_info=exc)
    return f"internal error: {type(exc).__name__}", INTERNAL
