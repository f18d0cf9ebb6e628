"""An identity provider's ID token, exchanged with IAM as the SDK's ``FederalAccessor``
does: ``POST {iam}/v3.0/OS-AUTH/id-token/tokens`` (``X-Idp-Id``) answers an unscoped token
in ``X-Subject-Token``, and ``POST {iam}/v3.0/OS-CREDENTIAL/securitytokens`` exchanges it
for a temporary key lasting six hours. The ID token file is read at every fetch."""

from __future__ import annotations

from exporter.cloud.errors import ApiError, snippet
from exporter.cloud.keys.answer import TemporaryKey
from exporter.cloud.keys.calls import JSON_UTF8, SourceKeys, call, failed, key_from, read_token
from exporter.cloud.transport import Response
from exporter.domain.credentials import FederatedSource

SOURCE = "id_token"
TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"  # noqa: S105 - a path
KEY_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
DURATION = 6 * 3600


class FederatedKeys(SourceKeys[FederatedSource]):
    """Fetches a key from IAM for the current ID token."""

    source = SOURCE

    async def fetch(self, deadline: float | None) -> TemporaryKey:
        """A key for the ID token the file holds now."""
        s = self._source
        id_token = read_token(SOURCE, s.token_file, self._on_secret)
        headers = {"X-Idp-Id": s.idp_id, "Content-Type": JSON_UTF8}
        resp = await self._post(TOKEN_PATH, headers, {"auth": {"id_token": {"id": id_token}}},
                                deadline)  # fmt: skip
        token = resp.headers.get("X-Subject-Token", "")
        if resp.error is not None or resp.status >= 400 or not token:
            what = f"IAM gave no token for the ID token (HTTP {resp.status}: {snippet(resp.body)})"
            raise failed(SOURCE, what, resp.error)
        self._on_secret(token)
        identity = {"methods": ["token"], "token": {"id": token, "duration_seconds": DURATION}}
        body = {"auth": {"identity": identity}}
        resp = await self._post(KEY_PATH, {"Content-Type": JSON_UTF8}, body, deadline)
        return key_from(SOURCE, resp, self._on_secret)

    async def _post(
        self, path: str, headers: dict[str, str], body: object, deadline: float | None
    ) -> Response:
        iam = self._source.iam_endpoint.rstrip("/")
        try:
            return await call(
                self._transport, "credentials_id_token", "POST", iam + path, headers, body,
                deadline,
            )  # fmt: skip
        except ApiError as exc:
            raise failed(SOURCE, f"cannot reach {iam}", exc) from None
