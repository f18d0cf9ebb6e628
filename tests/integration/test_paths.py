"""No request ever leaves its API's path, whatever an ID holds.

IDs from the cloud are validated before use, but a path is escaped whatever it holds: this
property sends detail requests for arbitrary IDs and project IDs to a server whose routes
are the API's own, and checks each arrived at its route with the ID intact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.cloud import paths
from exporter.domain.targets import Resource, SweepKey, TargetKey
from tests.helpers import serving

ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Co")), min_size=1, max_size=40
)


class Routes:
    """The API's routes; every request is recorded with the route it matched."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.app = web.Application()
        # Any character but "/" in a segment (aiohttp's default also refuses braces).
        p, i = "{project:[^/]+}", "{id:[^/]+}"
        for name, route in [("devserver_image", f"/v1/{p}/dev-servers/images/{i}"),
                            ("image_server", f"/v1/{p}/image-servers/{i}"),
                            ("list", f"/v1/{p}/image-servers"),
                            ("jobs", f"/v1/{p}/image-server-jobs")]:  # fmt: skip
            self.app.router.add_get(route, self._handler(name))
        self.app.router.add_route("*", "/{tail:.*}", self._handler("elsewhere"))

    def _handler(self, name: str):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.Response:
            self.seen.append((name, dict(request.match_info)))
            return web.Response(text="{}")

        return handle


@pytest.fixture
async def routes() -> AsyncIterator[tuple[Routes, str, aiohttp.ClientSession]]:
    r = Routes()
    async with serving(r.app) as base, aiohttp.ClientSession() as session:
        yield r, base, session


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(project=ids, oid=ids, resource=st.sampled_from(list(Resource)))
async def test_a_detail_request_stays_on_its_path(
    routes: tuple[Routes, str, aiohttp.ClientSession], project: str, oid: str, resource: Resource
) -> None:
    r, base, session = routes
    r.seen.clear()
    url = paths.url(base, paths.detail(TargetKey(resource, project, oid)))
    async with session.get(url) as resp:
        await resp.read()
    [(name, match)] = r.seen
    assert name == resource.value
    assert match == {"project": project, "id": oid}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(project=ids, value=ids)
async def test_list_and_job_requests_stay_on_their_paths(
    routes: tuple[Routes, str, aiohttp.ClientSession], project: str, value: str
) -> None:
    r, base, session = routes
    r.seen.clear()
    key = SweepKey(Resource.IMAGE_SERVER, project)
    for path, name in ((paths.listing(key), "list"), (paths.jobs(project), "jobs")):
        async with session.get(paths.url(base, path, [("job_id", value)])) as resp:
            await resp.read()
        assert r.seen.pop() == (name, {"project": project})
