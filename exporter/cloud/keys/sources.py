"""The fetcher of each credential source."""

from __future__ import annotations

from collections.abc import Callable

from exporter.cloud.keys.federation import FederatedKeys
from exporter.cloud.keys.metadata import MetadataKeys
from exporter.cloud.keys.oidc import OidcKeys
from exporter.cloud.keys.pod_identity import PodIdentityKeys
from exporter.cloud.keys.renewal import KeyFetcher
from exporter.cloud.transport import Transport
from exporter.domain.credentials import (
    MetadataSource,
    OidcSource,
    PodIdentitySource,
    TemporarySource,
)


def fetcher_for(
    source: TemporarySource, transport: Transport, on_secret: Callable[[str], None]
) -> KeyFetcher:
    """What fetches keys from ``source``; every secret it reads goes to ``on_secret``."""
    if isinstance(source, MetadataSource):
        return MetadataKeys(source, transport, on_secret)
    if isinstance(source, PodIdentitySource):
        return PodIdentityKeys(source, transport, on_secret)
    if isinstance(source, OidcSource):
        return OidcKeys(source, transport, on_secret)
    return FederatedKeys(source, transport, on_secret)
