"""CCE pod identity: keys for the pod's service account, as the SDK's
``PodIdentityAccessor`` asks for them: ``POST $HC_CONTAINER_CREDENTIALS_FULL_URI`` with the
kubelet-projected token (read at every fetch: it rotates in place) as ``Authorization``,
and ``{}`` as the body."""

from __future__ import annotations

from exporter.cloud.errors import ApiError
from exporter.cloud.keys.answer import TemporaryKey
from exporter.cloud.keys.calls import SourceKeys, call, failed, key_from, read_token
from exporter.domain.credentials import PodIdentitySource

SOURCE = "pod_identity"


class PodIdentityKeys(SourceKeys[PodIdentitySource]):
    """Fetches the pod's key from the node's credential endpoint."""

    source = SOURCE

    async def fetch(self, deadline: float | None) -> TemporaryKey:
        """The pod's current temporary key."""
        token = read_token(SOURCE, self._source.token_file, self._on_secret)
        headers = {"Authorization": token, "Content-Type": "application/json"}
        try:
            resp = await call(
                self._transport, "credentials_pod_identity", "POST", self._source.uri, headers,
                {}, deadline,
            )  # fmt: skip
        except ApiError as exc:
            raise failed(SOURCE, f"cannot reach {self._source.uri}", exc) from None
        return key_from(SOURCE, resp, self._on_secret)
