"""Typed calls to the two detail APIs, with the right authentication for each target."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from pydantic import ValidationError
from yarl import URL

from exporter.cloud import convert
from exporter.cloud.auth import Authenticator, IamTokenAuth
from exporter.cloud.errors import ApiError, ErrorKind, snippet
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.models import DevServerImageModel, ImageServerModel, ObjectModel
from exporter.cloud.sanitize import clean
from exporter.cloud.transport import Response, Transport
from exporter.domain.credentials import Credentials
from exporter.domain.state import CloudObject
from exporter.domain.targets import Resource, Target

_M = TypeVar("_M", bound=ObjectModel)


class HuaweiCloudClient:
    """Fetches one object per call; returns it, None when it does not exist, or raises ApiError.

    One client serves the exporter for its whole life: authenticators (and the IAM tokens
    they hold) are kept per credentials across reloads, since every needless IAM login costs
    a request and repeated ones can lock the IAM user.
    """

    def __init__(
        self,
        transport: Transport,
        metrics: ApiMetrics,
        authenticator_for: Callable[[Credentials], Authenticator],
    ) -> None:
        self._transport = transport
        self._metrics = metrics
        self._authenticator_for = authenticator_for
        self._authenticators: dict[Credentials, Authenticator] = {}

    def retain(self, credentials: Collection[Credentials], *, iam_failure_backoff: float) -> None:
        """Keep the authenticators of ``credentials``, forget those of any others."""
        for gone in self._authenticators.keys() - set(credentials):
            del self._authenticators[gone]
        for auth in self._authenticators.values():
            if isinstance(auth, IamTokenAuth):
                auth.failure_backoff = iam_failure_backoff

    def _auth(self, credentials: Credentials) -> Authenticator:
        auth = self._authenticators.get(credentials)
        if auth is None:
            auth = self._authenticators[credentials] = self._authenticator_for(credentials)
        return auth

    async def get_devserver_image(
        self, target: Target, deadline: float | None = None
    ) -> DevServerImageModel | None:
        """``GET /v1/{project_id}/dev-servers/images/{id}``; None after a 404."""
        return await self._get(target, DevServerImageModel, deadline)

    async def get_image_server(
        self, target: Target, deadline: float | None = None
    ) -> ImageServerModel | None:
        """``GET /v1/{project_id}/image-servers/{server_id}``; None after a 404."""
        return await self._get(target, ImageServerModel, deadline)

    async def fetch(self, target: Target, deadline: float | None = None) -> CloudObject | None:
        """The object a target names, as plain state; None after a 404."""
        if target.key.resource is Resource.DEVSERVER_IMAGE:
            image = await self.get_devserver_image(target, deadline)
            return convert.devserver_image(image) if image is not None else None
        server = await self.get_image_server(target, deadline)
        return convert.image_server(server) if server is not None else None

    async def _get(self, target: Target, model: type[_M], deadline: float | None) -> _M | None:
        api = target.key.resource.value
        auth = self._auth(target.credentials)
        url = URL(target.endpoint + target.path, encoded=True)
        project_id = target.key.project_id
        sent: dict[str, str] = {}

        async def headers() -> dict[str, str]:
            sent.update(await auth.headers("GET", url, project_id, deadline))
            return sent

        resp = await self._transport.request(api, "GET", url, headers, deadline=deadline)
        # A 401 with a cached token means it was revoked or expired early: one fresh try,
        # never a loop, and never for a signature (that would count toward the lockout).
        if resp.status == 401 and auth.invalidate(project_id, sent):
            resp = await self._transport.request(api, "GET", url, headers, deadline=deadline)
        if resp.error is not None:
            raise resp.error
        if resp.status == 404:
            return None
        try:
            answer = model.model_validate_json(resp.body)
        except ValidationError as exc:
            content_type = clean(resp.headers.get("Content-Type", "no content type"), 100)
            raise self._invalid(
                api,
                resp,
                f"answer is not the expected JSON object ({content_type}; "
                f"{exc.error_count()} problem(s)): {snippet(resp.body) or 'empty body'}",
            ) from None
        if answer.object_id != target.key.id:
            # `{}`, an error envelope with status 200, or another object: not this one.
            raise self._invalid(
                api,
                resp,
                f"answer does not describe {target.key.id!r} (it names "
                f"{clean(answer.object_id or 'no ID', 100)!r}): {snippet(resp.body)}",
            )
        return answer

    def _invalid(self, api: str, resp: Response, detail: str) -> ApiError:
        self._metrics.error(api, ErrorKind.INVALID_RESPONSE.value)
        return ApiError(
            ErrorKind.INVALID_RESPONSE, detail, status=resp.status, request_id=resp.request_id
        )
