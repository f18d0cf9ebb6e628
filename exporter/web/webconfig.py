"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import bcrypt
from aiohttp import hdrs, web
from pydantic import Field, SecretStr, ValidationError

from exporter.config.errors import ConfigError
from exporter.config.files import MAX_CONFIG_BYTES, parse_yaml, read_text
from exporter.config.validation import StrictModel, problems

WEB_CONFIG_REFERENCE = "the exporter-toolkit web configuration documentation"
# Probes must work without credentials; they reveal nothing about the cloud.
UNPROTECTED_PATHS = frozenset({"/-/healthy", "/-/ready"})
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class TlsServerConfig(StrictModel):
    """``tls_server_config``."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: (
        Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] | None
    ) = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None


class HttpServerConfig(StrictModel):
    """``http_server_config``: extra response headers."""

    headers: dict[str, str] = Field(default_factory=dict)


class WebConfigModel(StrictModel):
    """The whole web configuration file."""

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig | None = None
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)


def load_web_config(path: str) -> WebConfigModel:
    """Parse and check a web config file; raise ConfigError naming each mistake."""
    data = parse_yaml(read_text(path, MAX_CONFIG_BYTES, "web config"), "web config") or {}
    try:
        model = WebConfigModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems(exc, WEB_CONFIG_REFERENCE, prefix="web config: ")) from None
    mistakes = []
    for user, hashed in model.basic_auth_users.items():
        if not hashed.get_secret_value().startswith(("$2a$", "$2b$", "$2y$")):
            mistakes.append(
                f"web config: basic_auth_users.{user}: not a bcrypt hash; create one with "
                "`python -c 'import bcrypt,getpass; print(bcrypt.hashpw(getpass.getpass()"
                ".encode(), bcrypt.gensalt()).decode())'`"
            )
    if mistakes:
        raise ConfigError(mistakes)
    if model.tls_server_config is not None:
        ssl_context(model.tls_server_config)  # fail at start-up, not at the first connection
    return model


def ssl_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """An SSL context for the listener, from a ``tls_server_config`` section."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            [f"web config: tls_server_config.cert_file/key_file: cannot load: {exc}"]
        ) from None
    auth_type = tls.client_auth_type
    if auth_type is None:
        auth_type = "RequireAndVerifyClientCert" if tls.client_ca_file else "NoClientCert"
    if auth_type != "NoClientCert":
        if tls.client_ca_file is None:
            raise ConfigError(
                [f"web config: tls_server_config.client_ca_file: required by {auth_type}"]
            )
        try:
            ctx.load_verify_locations(tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                [f"web config: tls_server_config.client_ca_file: cannot load: {exc}"]
            ) from None
    ctx.verify_mode = _CLIENT_AUTH[auth_type]
    return ctx


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``(login, password)`` from an ``Authorization: Basic ...`` header, or None."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep else None


BCRYPT_MAX_PASSWORD = 72  # bytes; bcrypt ignores (Go's refuses, bcrypt 5 raises on) the rest


def _check_password(password: bytes, hashed: bytes) -> bool:
    """bcrypt's verdict; a password too long for bcrypt costs the same work and never matches."""
    if len(password) > BCRYPT_MAX_PASSWORD:
        bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
        return False
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a hash bcrypt cannot read: no password matches it
        return False


def _cost(hashed: bytes) -> int:
    """The work factor of a bcrypt hash (``$2b$12$...`` -> 12), 10 when unreadable."""
    parts = hashed.split(b"$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 10


class BasicAuthChecker:
    """Checks basic-auth credentials against bcrypt hashes, off the event loop.

    bcrypt is deliberately slow, so successful checks are remembered by a digest of the
    presented credentials (as exporter-toolkit does) and misses run in a worker thread.
    An unknown user is checked against a dummy hash of the same cost, so the answer's
    timing does not tell which users exist.
    """

    def __init__(self, users: dict[str, SecretStr]) -> None:
        self._users = {u: h.get_secret_value().encode() for u, h in users.items()}
        self._good: set[bytes] = set()
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=min(max(cost, 4), 31)))

    async def check(self, header: str | None) -> bool:
        """Whether an Authorization header names a known user and the right password."""
        parsed = parse_basic_auth(header)
        if parsed is None:
            return False
        login, password = parsed
        hashed = self._users.get(login)
        if hashed is None:
            await asyncio.to_thread(_check_password, password.encode(), self._dummy)
            return False
        digest = hashlib.sha256(f"{login}\0{password}".encode() + hashed).digest()
        if digest in self._good:
            return True
        ok = await asyncio.to_thread(_check_password, password.encode(), hashed)
        if ok and len(self._good) < 1024:
            self._good.add(digest)
        return ok


def install(app: web.Application, model: WebConfigModel) -> None:
    """Add the configured basic auth and response headers to an app before it starts."""
    checker = BasicAuthChecker(model.basic_auth_users) if model.basic_auth_users else None
    headers = model.http_server_config.headers if model.http_server_config else {}

    if checker is not None:

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in UNPROTECTED_PATHS or await checker.check(
                request.headers.get(hdrs.AUTHORIZATION)
            ):
                return await handler(request)
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="huaweicloud-image-exporter"'},
            )

        app.middlewares.append(guard)

    if headers:

        async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
            response.headers.update(headers)

        app.on_response_prepare.append(add_headers)
