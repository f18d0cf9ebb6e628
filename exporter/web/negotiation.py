"""Content negotiation for /metrics: which format and whether gzip, from the request headers."""

from __future__ import annotations

from exporter.exposition.textformat import Format


def _quality(params: list[str]) -> float:
    for p in params:
        name, _, value = p.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> Format:
    """OpenMetrics when the client accepts it at least as much as plain text, else text 0.0.4."""
    best = {Format.TEXT: 0.0, Format.OPENMETRICS: -1.0}
    media_types = {"application/openmetrics-text": Format.OPENMETRICS, "text/plain": Format.TEXT}
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        fmt = media_types.get(media.strip().lower())
        if fmt is not None:
            best[fmt] = max(best[fmt], _quality(params))
    if best[Format.OPENMETRICS] > 0 and best[Format.OPENMETRICS] >= best[Format.TEXT]:
        return Format.OPENMETRICS
    return Format.TEXT


def gzip_accepted(accept_encoding: str | None) -> bool:
    """Whether the client takes a gzip body (``q=0`` refuses it)."""
    for item in (accept_encoding or "").split(","):
        coding, *params = item.split(";")
        if coding.strip().lower() == "gzip" and _quality(params) > 0:
            return True
    return False
