"""Workload identity federation: an OIDC ID token exchanged with STS for an agency's keys,
as the SDK's ``OidcStsAccessor`` asks: ``POST {sts}/v5/agencies/assume-with-oidc`` with
``provider_urn``, ``agency_urn``, ``agency_session_name``, ``id_token`` and
``duration_seconds``. The token comes from a file read at every fetch (it rotates)."""

from __future__ import annotations

from exporter.cloud.errors import ApiError
from exporter.cloud.keys.answer import TemporaryKey
from exporter.cloud.keys.calls import JSON_UTF8, SourceKeys, call, failed, key_from, read_token
from exporter.domain.credentials import OidcSource

SOURCE = "oidc"
ASSUME_PATH = "/v5/agencies/assume-with-oidc"


class OidcKeys(SourceKeys[OidcSource]):
    """Fetches the agency's key from STS for the current ID token."""

    source = SOURCE

    async def fetch(self, deadline: float | None) -> TemporaryKey:
        """The agency's key for the ID token the file holds now."""
        s = self._source
        token = s.token or read_token(SOURCE, s.token_file, self._on_secret)
        body = {
            "provider_urn": s.provider_urn, "agency_urn": s.agency_urn,
            "agency_session_name": s.session_name, "id_token": token,
            "duration_seconds": s.duration_seconds,
        }  # fmt: skip
        url = s.sts_endpoint.rstrip("/") + ASSUME_PATH
        try:
            resp = await call(
                self._transport, "credentials_oidc", "POST", url, {"Content-Type": JSON_UTF8},
                body, deadline,
            )  # fmt: skip
        except ApiError as exc:
            raise failed(SOURCE, f"cannot reach {s.sts_endpoint}", exc) from None
        return key_from(SOURCE, resp, self._on_secret)
