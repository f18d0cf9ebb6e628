"""Typed calls to the two detail APIs, with the right authentication for each target."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from yarl import URL

from exporter.api_errors import ApiError, ErrorKind, snippet
from exporter.api_models import DevServerImageModel, ImageServerModel
from exporter.auth import Authenticator
from exporter.credentials import Credentials
from exporter.instrumentation import ApiMetrics
from exporter.state import CloudObject, DevServerImage, ImageServer
from exporter.targets import Resource, Target
from exporter.transport import Transport

_M = TypeVar("_M", bound=BaseModel)


class HuaweiCloudClient:
    """Fetches one object per call; returns it, None when it does not exist, or raises ApiError."""

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
            return DevServerImage.from_model(image) if image is not None else None
        server = await self.get_image_server(target, deadline)
        return ImageServer.from_model(server) if server is not None else None

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
            return model.model_validate_json(resp.body)
        except ValidationError as exc:
            self._metrics.error(api, ErrorKind.INVALID_RESPONSE.value)
            content_type = resp.headers.get("Content-Type", "no content type")
            raise ApiError(
                ErrorKind.INVALID_RESPONSE,
                f"answer is not the expected JSON object ({content_type}; "
                f"{exc.error_count()} problem(s)): {snippet(resp.body) or 'empty body'}",
                status=resp.status,
                request_id=resp.request_id,
            ) from None
