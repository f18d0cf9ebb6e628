"""An ECS, BMS or CCE node's agency: keys from the instance metadata service, exactly as
the SDK's ``MetadataAccessor`` asks for them.

``PUT /meta-data/latest/api/token`` (``X-Metadata-Token-Ttl-Seconds: 21600``) gives a
session token where the service has one; 404, 405 or 503 mean it has none, and the key is
asked for without it (the token call is tried again a day later). ``GET
/openstack/latest/securitykey`` then answers the agency's temporary key; a 401 that is not
"no agency" means the session token expired: a new one, and one retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.cloud.errors import ApiError
from exporter.cloud.keys.answer import TemporaryKey
from exporter.cloud.keys.calls import call, failed, key_from
from exporter.cloud.transport import Response, Transport
from exporter.domain.credentials import MetadataSource

SOURCE = "metadata"
TOKEN_PATH = "/meta-data/latest/api/token"  # noqa: S105 - a path
KEY_PATH = "/openstack/latest/securitykey"
TOKEN_TTL = 6 * 3600
NO_TOKEN_SERVICE = (404, 405, 503)
RETRY_TOKEN_AFTER = 24 * 3600.0  # with no token service, ask again this much later
NO_AGENCY = "Please configure Cloud Service Agency first"


class MetadataKeys:
    """Fetches the agency's key from the metadata service at ``source.endpoint``."""

    source = SOURCE

    def __init__(
        self,
        source: MetadataSource,
        transport: Transport,
        on_secret: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = source.endpoint.rstrip("/")
        self._transport = transport
        self._on_secret = on_secret
        self._clock = clock
        self._token: str | None = None
        self._token_tried: float | None = None

    async def fetch(self, deadline: float | None) -> TemporaryKey:
        """The agency's current temporary key."""
        if self._token is None and (
            self._token_tried is None or self._clock() - self._token_tried > RETRY_TOKEN_AFTER
        ):
            await self._new_token(deadline, required=False)
        resp = await self._key(deadline)
        if resp.status == 401 and NO_AGENCY not in resp.body.decode(errors="replace"):
            await self._new_token(deadline, required=True)
            resp = await self._key(deadline)
        if resp.status >= 400 and NO_AGENCY in resp.body.decode(errors="replace"):
            raise failed(
                SOURCE,
                "this instance has no agency; in the ECS console open the instance, then "
                "Management Information, Agency, and choose (or create, in IAM: Agencies, "
                "for the ECS service) an agency holding the exporter's policies",
            )
        return key_from(SOURCE, resp, self._on_secret)

    async def _key(self, deadline: float | None) -> Response:
        headers = {"X-Metadata-Token": self._token} if self._token else {}
        try:
            return await call(
                self._transport, "credentials_metadata", "GET", self._endpoint + KEY_PATH,
                headers, deadline=deadline,
            )  # fmt: skip
        except ApiError as exc:
            raise failed(SOURCE, f"cannot reach {self._endpoint}", exc) from None

    async def _new_token(self, deadline: float | None, *, required: bool) -> None:
        self._token_tried = self._clock()
        headers = {"X-Metadata-Token-Ttl-Seconds": str(TOKEN_TTL)}
        try:
            resp = await call(
                self._transport, "credentials_metadata", "PUT", self._endpoint + TOKEN_PATH,
                headers, deadline=deadline,
            )  # fmt: skip
        except ApiError as exc:
            raise failed(SOURCE, f"cannot reach {self._endpoint}", exc) from None
        if resp.status == 200 and resp.body:
            self._token = resp.body.decode(errors="replace").strip()
            self._on_secret(self._token)
        elif resp.status in NO_TOKEN_SERVICE and not required:
            self._token = None
        else:
            raise failed(SOURCE, f"the session token call answered HTTP {resp.status}", resp.error)
