"""How requests to the cloud cross the network: through a forward proxy or not, and which
certificates are trusted, as Prometheus' own HTTP client configuration says it.

A proxy is taken from the configuration (``http_client.proxy_url``), else from the
environment as the official SDK's ``requests`` takes it (``HTTPS_PROXY`` for https URLs,
``HTTP_PROXY`` for http ones, ``NO_PROXY``). Loopback and link-local addresses (the
instance metadata service, 169.254.169.254) are never proxied. ``no_proxy`` entries are
host names (``.corp`` or ``corp`` matches every host under it), IP addresses, or networks
(``10.0.0.0/8``); ``*`` means no proxy at all.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from yarl import URL


@dataclass(frozen=True, slots=True)
class Network:
    """The proxies for https and http URLs, the hosts that skip them, and TLS trust."""

    https_proxy: str | None = field(default=None, repr=False)  # may carry user:password
    http_proxy: str | None = field(default=None, repr=False)
    no_proxy: tuple[str, ...] = ()
    ca_file: str | None = None
    insecure_skip_verify: bool = False

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str],
        *,
        proxy_url: str | None = None,
        no_proxy: tuple[str, ...] | None = None,
        ca_file: str | None = None,
        insecure_skip_verify: bool = False,
    ) -> Network:
        """The configured proxy for every URL, else the environment's (``HTTPS_PROXY``,
        ``HTTP_PROXY``, ``NO_PROXY``, in either case)."""

        def var(name: str) -> str | None:
            return env.get(name) or env.get(name.lower()) or None

        skip = no_proxy
        if skip is None:
            skip = tuple(p.strip() for p in (var("NO_PROXY") or "").split(",") if p.strip())
        return cls(
            proxy_url or var("HTTPS_PROXY"), proxy_url or var("HTTP_PROXY"), skip, ca_file,
            insecure_skip_verify,
        )  # fmt: skip

    @property
    def secrets(self) -> tuple[str, ...]:
        """A proxy's password, which must never be shown."""
        found = []
        for proxy in (self.https_proxy, self.http_proxy):
            if proxy and URL(proxy).password:
                found.append(str(URL(proxy).password))
        return tuple(found)

    def proxy_for(self, url: URL) -> str | None:
        """The proxy a request to ``url`` goes through, None for a direct connection."""
        proxy = self.https_proxy if url.scheme == "https" else self.http_proxy
        host = (url.host or "").strip("[]").lower()
        if proxy is None or _local(host) or _excluded(host, self.no_proxy):
            return None
        return proxy

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp verifies servers with: the system's CAs and ``ca_file``'s, or
        nothing (False) with ``insecure_skip_verify``."""
        if self.insecure_skip_verify:
            return False
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local


def _excluded(host: str, no_proxy: tuple[str, ...]) -> bool:
    for given in no_proxy:
        # "host:port" is taken for the host (an IPv6 address has more than one colon).
        entry = given.lower().split(":", 1)[0] if given.count(":") == 1 else given.lower()
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
            continue
        except ValueError:
            pass
        suffix = entry.lstrip(".")
        if suffix and (host == suffix or host.endswith("." + suffix)):
            return True
    return False
